import Logging
import LoopKit
import ServiceLifecycle

/// An echo server as a swift-service-lifecycle `Service`, written the way an async Swift service is: every
/// connection is served by an `EchoSession` actor pinned to the listener's loop, so its state needs no lock
/// and its awaits hop no thread. Run it under a `ServiceGroup` after an `EventLoopGroupService` (services
/// stop in reverse order: the server stops accepting before the loops drain).
///
/// Graceful shutdown closes the listener; sessions in progress finish when their clients close.
public struct ActorEchoService: Service {
    private let listener: TCPListener
    private let loop: EventLoop
    private let logger: Logger

    /// Listens on 127.0.0.1:`port` (0: any free port) on one of `group`'s loops.
    ///
    /// - Throws: what `TCPListener.init` throws (`EventLoopError`: the address in use, `.terminated`, ...).
    public init(group: EventLoopGroup, port: UInt16 = 0, logger: Logger) throws {
        loop = group.next()
        listener = try TCPListener(port: port, on: loop)
        self.logger = logger
    }

    /// The port the server listens on.
    public var port: UInt16 { listener.port }

    /// Accepts connections until graceful shutdown, serving each in its own session; returns once every
    /// session has ended.
    public func run() async {
        let listener = self.listener
        logger.info("echo service listening", metadata: ["port": "\(port)"])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { sessions in
                do {
                    for try await connection in listener.connections() {
                        let session = EchoSession(connection, on: loop)
                        sessions.addTask { await session.run() }
                    }
                } catch {
                    logger.error("accept failed", metadata: ["error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            Task { try? await listener.close() } // ends the connection sequence
        }
        logger.info("echo service stopped")
    }
}

/// One client's session: reads a chunk, writes it back, and counts the bytes, on the loop thread.
public actor EchoSession {
    private let connection: TCPConnection
    private let loop: EventLoop
    /// Bytes echoed so far.
    public private(set) var bytesEchoed = 0

    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }

    public init(_ connection: TCPConnection, on loop: EventLoop) {
        self.connection = connection
        self.loop = loop
    }

    /// Echoes until the client closes, goes silent for 30 s, or the connection fails; then closes it.
    public func run() async {
        do {
            while let chunk = try await connection.read(timeout: .seconds(30)) {
                try await connection.write(chunk)
                bytesEchoed += chunk.count
            }
        } catch {
            // A reset, a timeout or the loop's termination: the session ends either way.
        }
        try? await connection.close()
    }
}
