import LoopKit

/// A TCP echo server on 127.0.0.1, built on `TCPListener` and `TCPConnection`: each connection reads a
/// chunk, writes it back, and reads the next once the echo is sent, so it never holds more than one chunk
/// however slowly its peer reads (backpressure). End of stream, an error or `stop()` closes it.
///
/// Threading: `start(port:)`, `stop()` and `connectionCount` may be called from any thread (they hop onto
/// the loop with `perform`); the listener and the connection table are touched only on the loop thread,
/// which makes the `@unchecked Sendable` conformance sound.
public final class EchoServer: @unchecked Sendable {
    private let loop: EventLoop
    private let sendBufferSize: Int?
    private var listener: TCPListener?
    private var connections: [ObjectIdentifier: TCPConnection] = [:]

    /// - Parameter sendBufferSize: SO_SNDBUF for each connection; nil keeps the kernel's auto-tuned size.
    public init(loop: EventLoop, sendBufferSize: Int? = nil) {
        self.loop = loop
        self.sendBufferSize = sendBufferSize
    }

    /// Listens on 127.0.0.1:`port` (0: any free port) and returns the bound port. Any thread.
    ///
    /// - Throws: what `TCPListener.init` throws; `.alreadyRunning` when started twice; `.terminated`.
    @discardableResult
    public func start(port: UInt16 = 0) async throws -> UInt16 {
        let listener = try TCPListener(port: port, on: loop)
        try await loop.perform { [self] in
            guard self.listener == nil else { throw EventLoopError.alreadyRunning }
            self.listener = listener
            listener.accept { [self] in if case .success(let connection) = $0 { serve(connection) } }
        }
        return listener.port
    }

    /// Closes every connection, then the listener; the server may be started again. Any thread.
    ///
    /// - Throws: `EventLoopError.terminated` when the loop no longer runs tasks (it closed the sockets).
    public func stop() async throws {
        let listener = try await loop.perform { [self] in
            for connection in connections.values { connection.close() }
            connections = [:]
            defer { self.listener = nil }
            return self.listener
        }
        try await listener?.close()
    }

    /// The number of open client connections. Any thread.
    public var connectionCount: Int {
        get async throws { try await loop.perform { [self] in connections.count } }
    }

    private func serve(_ connection: TCPConnection) {
        if let sendBufferSize { connection.setSendBufferSize(sendBufferSize) }
        connections[ObjectIdentifier(connection)] = connection
        echo(connection)
    }

    private func echo(_ connection: TCPConnection) {
        connection.read { [self] result in
            guard case .success(let chunk?) = result else { return drop(connection) }
            connection.write(chunk) { [self] in if case .success = $0 { echo(connection) } else { drop(connection) } }
        }
    }

    private func drop(_ connection: TCPConnection) {
        connections[ObjectIdentifier(connection)] = nil
        connection.close()
    }
}
