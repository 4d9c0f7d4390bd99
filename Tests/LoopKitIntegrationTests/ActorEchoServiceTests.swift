import ActorEchoService
import Glibc
import Logging
import LoopKit
import LoopKitIntegration
import ServiceLifecycle
import Synchronization
import Testing
import TestSupport

/// The example service (Examples/ActorEchoService) under a ServiceGroup: it echoes every byte through its
/// loop-pinned session actors, and a graceful shutdown stops it and drains the loops.
@Suite struct ActorEchoServiceTests {
    @Test func echoesThroughLoopPinnedSessionsAndStopsOnGracefulShutdown() async throws {
        var configuration = EventLoopGroup.Configuration(loopCount: 2)
        configuration.loop.idleStrategy = .park
        let loops = try EventLoopGroup(configuration: configuration)
        let logger = Logger(label: "actor-echo") { _ in SwiftLogNoOpLogHandler() }
        let echo = try ActorEchoService(group: loops, logger: logger)
        let services = ServiceGroup(configuration: .init(
            services: [EventLoopGroupService(loops, logger: logger), echo], logger: logger))
        let stopped = Flag()
        let run = Task {
            try await services.run()
            stopped.set()
        }

        let port = echo.port
        let replies = await withTaskGroup(of: Bool.self) { clients in
            for client in 0..<4 {
                clients.addTask { await onOwnThread { BlockingClient.echoes(port: port, seed: UInt8(client), rounds: 50) } }
            }
            return await clients.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(replies == [true, true, true, true], "every client got back exactly what it sent")

        await services.triggerGracefulShutdown()
        guard await awaitCondition({ stopped.isSet }) else {
            Issue.record("the service group did not stop after graceful shutdown")
            run.cancel() // the service group then cancels its services, which closes the loops
            return
        }
        try await run.value
        #expect(loops.allSatisfy { $0.state == .terminated })
    }
}

private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Runs blocking socket code on a thread of its own (an async test never blocks the cooperative pool).
private func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        do {
            try startDetachedThread { continuation.resume(returning: body()) }
        } catch {
            fatalError("onOwnThread: \(error)")
        }
    }
}

/// A blocking TCP client: sends `rounds` messages of 1..64 bytes and checks each echo byte for byte.
private enum BlockingClient {
    static func echoes(port: UInt16, seed: UInt8, rounds: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // Every call is bounded: a server that stops answering fails the test instead of hanging it.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            setsockopt(fd, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        for round in 0..<rounds {
            let message = (0..<(1 + round % 64)).map { UInt8(truncatingIfNeeded: Int(seed) &* 31 &+ round &+ $0) }
            var sent = -1
            repeat { sent = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
            while sent < 0 && errno == EINTR
            guard sent == message.count else { return false }
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64)
            while received.count < message.count {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue } // a call on a socket with a timeout is not restarted
                guard n > 0 else { return false }
                received += chunk[0..<n]
            }
            guard received == message else { return false }
        }
        return true
    }
}
