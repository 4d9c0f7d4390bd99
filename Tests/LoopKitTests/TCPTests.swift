import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// The ways a loop carries out socket operations: epoll (readiness and non-blocking calls), io_uring with
/// the kernel's provided-buffer ring, io_uring with single-shot receives (the path of kernels without
/// buffer rings, forced by `usesBufferRing = false`).
enum IOVariant: CustomTestStringConvertible, Sendable {
    case epoll, ioUringBufferRing, ioUringSingleShot

    static let available: [IOVariant] =
        LoopBackends.available.contains(.ioUring) ? [.epoll, .ioUringBufferRing, .ioUringSingleShot] : [.epoll]

    var testDescription: String {
        switch self {
        case .epoll: return "epoll"
        case .ioUringBufferRing: return "io_uring+buffer-ring"
        case .ioUringSingleShot: return "io_uring single-shot"
        }
    }

    func configuration(readBufferCount: Int = 256, readBufferSize: Int = 16 * 1024) -> EventLoop.Configuration {
        var c = EventLoop.Configuration.testing(backend: self == .epoll ? .epoll : .ioUring)
        c.usesBufferRing = self != .ioUringSingleShot
        c.readBufferCount = readBufferCount
        c.readBufferSize = readBufferSize
        return c
    }
}

/// A callback echo server on TCPListener / TCPConnection: read a chunk, write it back, read again once it
/// is sent (so one connection holds at most one chunk: the backpressure). Loop thread state.
final class CallbackEcho: @unchecked Sendable {
    let loop: EventLoop
    let listener: TCPListener
    var connections: [ObjectIdentifier: TCPConnection] = [:]
    var accepted = 0
    var failures: [EventLoopError] = []
    var maxPendingWriteBytes = 0
    let acceptedCount = Atomic<Int>(0)
    let openCount = Atomic<Int>(0)

    init(loop: EventLoop) async throws {
        self.loop = loop
        listener = try TCPListener(on: loop)
        try await loop.perform { [self] in
            listener.accept { [self] result in
                switch result {
                case .success(let connection): serve(connection)
                case .failure(let error): failures.append(error)
                }
            }
        }
    }

    func serve(_ connection: TCPConnection) {
        accepted += 1
        acceptedCount.store(accepted, ordering: .releasing)
        connections[ObjectIdentifier(connection)] = connection
        openCount.store(connections.count, ordering: .releasing)
        echo(connection)
    }

    func echo(_ connection: TCPConnection) {
        connection.read { [self] result in
            switch result {
            case .success(let buffer?):
                connection.write(buffer) { [self] result in
                    if case .failure(let error) = result { return finish(connection, error) }
                    echo(connection)
                }
                maxPendingWriteBytes = max(maxPendingWriteBytes, connection.pendingWriteBytes)
            case .success(nil):
                finish(connection, nil)
            case .failure(let error):
                finish(connection, error)
            }
        }
    }

    func finish(_ connection: TCPConnection, _ error: EventLoopError?) {
        if let error, error != .cancelled { failures.append(error) }
        connection.close { [self] in
            connections[ObjectIdentifier(connection)] = nil
            openCount.store(connections.count, ordering: .releasing)
        }
    }
}

/// Runs blocking client code on a POSIX thread of its own and suspends until it returns: an async test never
/// blocks a thread of the cooperative pool, which the loop's awaiting tasks (and other tests) need.
func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        do {
            try startDetachedThread { continuation.resume(returning: body()) }
        } catch {
            fatalError("blocking(_:): \(error)")
        }
    }
}

/// A listener, a blocking client connected to it (EchoClient: 4 KiB receive buffer) and the server's side.
enum AcceptedPair {
    static func make(on loop: EventLoop) async throws -> (TCPListener, Int32, TCPConnection) {
        let listener = try TCPListener(on: loop)
        var accepted = listener.connections().makeAsyncIterator()
        let client = try EchoClient.connect(port: listener.port)
        try #require(client >= 0, "connect: errno \(-client)")
        let connection = try #require(try await accepted.next())
        return (listener, client, connection)
    }
}

@Suite struct TCPTests {
    @Test(arguments: IOVariant.available)
    func echoesEveryByteToConcurrentClients(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let server = try await CallbackEcho(loop: loop)
        let failures = OrderLog<String>()
        let port = server.listener.port
        await blocking {
            runOnThreads(6) { index in
                let holdBack = index.isMultiple(of: 2) ? 32 * 1024 : 0
                if let failure = EchoClient.roundTrip(port: port, seed: UInt64(index + 11), size: 96 * 1024, holdBack: holdBack) {
                    failures.append("client \(index): \(failure)")
                }
            }
        }
        #expect(failures.snapshot == [])
        #expect(await awaitCondition(seconds: 10) { server.openCount.load(ordering: .acquiring) == 0 })
        let (errors, lent, ring) = try await loop.perform { (server.failures, loop.receiveBuffersInUse, loop.usesBufferRing) }
        #expect(errors == [])
        #expect(lent == 0, "every receive buffer is back in the pool")
        #expect(ring == (variant == .ioUringBufferRing), "the buffer ring is used exactly where configured")
    }

    @Test(arguments: IOVariant.available)
    func endOfStreamIsNotAnErrorAndResetIs(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let listener = try TCPListener(on: loop)
        let accepted = listener.connections()
        var iterator = accepted.makeAsyncIterator()

        // A peer that half-closes: its bytes, then end of stream (nil), never an error.
        let a = try EchoClient.connect(port: listener.port)
        try #require(a >= 0)
        defer { close(a) }
        let first = try #require(try await iterator.next())
        var bytes: [UInt8] = [1, 2, 3]
        #expect(EchoClient.send(a, &bytes, 3) == 3)
        shutdown(a, Int32(SHUT_WR))
        var got: [UInt8] = []
        while let chunk = try await first.read() { got += chunk.bytes }
        #expect(got == [1, 2, 3])
        // The writing side still works after the peer's half-close.
        try await first.write([9])
        #expect(EchoClient.recv(a, &bytes, 1) == 1 && bytes[0] == 9)
        try await first.close()

        // A peer that resets: an error, distinct from end of stream.
        let b = try EchoClient.connect(port: listener.port)
        try #require(b >= 0)
        let second = try #require(try await iterator.next())
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(b, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(b)
        await #expect(throws: EventLoopError.connectionReset) { _ = try await second.read() }
        try await second.close()
        try await listener.close()
        #expect(try await iterator.next() == nil, "the sequence ends when the listener closes")
    }

    @Test(arguments: IOVariant.available)
    func readTimeoutLosesNoData(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let (_, client, connection) = try await AcceptedPair.make(on: loop)
        defer { close(client) }
        await #expect(throws: EventLoopError.timedOut) { _ = try await connection.read(timeout: .milliseconds(20)) }
        var byte: UInt8 = 42
        #expect(EchoClient.send(client, &byte, 1) == 1)
        let chunk = try await connection.read(timeout: .seconds(10))
        #expect(chunk?.bytes == [42])
        try await connection.close()
    }

    /// Closing with a read and a write in flight completes both with `.cancelled`, returns every buffer,
    /// and closes the fd (the peer sees end of stream).
    @Test(arguments: IOVariant.available)
    func closeCancelsOperationsInFlight(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let (_, client, connection) = try await AcceptedPair.make(on: loop)
        defer { close(client) }
        let results = OrderLog<String>()
        let closed = Atomic<Bool>(false)
        try await loop.perform {
            connection.read { results.append("read: \($0.map { _ in "data" })") }
            // More than the socket buffers hold: this write stays in flight.
            connection.write([UInt8](repeating: 7, count: 16 * 1024 * 1024)) { results.append("write: \($0)") }
            connection.write([1]) { results.append("queued write: \($0)") }
        }
        try await loop.perform {
            connection.close { closed.store(true, ordering: .releasing) }
        }
        #expect(await awaitCondition(seconds: 10) { closed.load(ordering: .acquiring) })
        #expect(Set(results.snapshot) == [
            "read: failure(the operation was cancelled)",
            "write: failure(the operation was cancelled)",
            "queued write: failure(the operation was cancelled)",
        ])
        #expect(try await loop.perform { loop.receiveBuffersInUse } == 0)
        // The peer gets what was sent, then end of stream: the server's fd is closed.
        let (n, error) = await blocking {
            var sink = [UInt8](repeating: 0, count: 65536)
            var n = 0
            repeat { n = EchoClient.recv(client, &sink, sink.count) } while n > 0
            return (n, errno)
        }
        #expect(n == 0, "end of stream (errno \(error))")
        await #expect(throws: EventLoopError.closed) { _ = try await connection.read() }
    }

    @Test(arguments: IOVariant.available)
    func connectsFromAnActorPinnedToTheLoop(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let server = try await CallbackEcho(loop: loop)
        actor Client {
            let loop: EventLoop
            nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }
            init(loop: EventLoop) { self.loop = loop }

            func exchange(port: UInt16) async throws -> [UInt8] {
                loop.preconditionInEventLoop()
                let connection = try await TCPConnection.connect(port: port, timeout: .seconds(10), on: loop)
                try await connection.write(Array("hello, loop".utf8))
                connection.shutdownWrite()
                var echoed: [UInt8] = []
                while let chunk = try await connection.read(timeout: .seconds(10)) { echoed += chunk.bytes }
                try await connection.close()
                return echoed
            }
        }
        let echoed = try await Client(loop: loop).exchange(port: server.listener.port)
        #expect(String(decoding: echoed, as: UTF8.self) == "hello, loop")
    }

    @Test(arguments: IOVariant.available)
    func connectErrorsAreTyped(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let (refusing, port) = try Loopback.refusingPort()
        defer { close(refusing) }
        await #expect(throws: EventLoopError.connectionRefused) { _ = try await TCPConnection.connect(port: port, on: loop) }
        await #expect(throws: EventLoopError.invalidAddress("localhost")) {
            _ = try await TCPConnection.connect(host: "localhost", port: port, on: loop)
        }
    }

    /// A connect that cannot complete (the listener's accept queue is full, so the kernel drops the SYN):
    /// its timeout ends it with `.timedOut`, and `cancel()` with `.cancelled`.
    @Test(arguments: IOVariant.available)
    func aHangingConnectTimesOutOrIsCancelled(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let (listener, port) = try Loopback.listener(backlog: 0) // never accepted from
        var fillers: [Int32] = []
        defer { close(listener); fillers.forEach { close($0) } }
        for _ in 0..<4 { fillers.append(Self.startConnect(port: port)) } // fill the accept queue (backlog 0)
        await #expect(throws: EventLoopError.timedOut) {
            _ = try await TCPConnection.connect(port: port, timeout: .milliseconds(100), on: loop)
        }
        let outcome = OrderLog<String>()
        try await loop.perform {
            let attempt = TCPConnection.connect(port: port, on: loop) { outcome.append("\($0.map { _ in "connected" })") }
            attempt.cancel()
        }
        #expect(await awaitCondition(seconds: 10) { outcome.count == 1 })
        #expect(outcome.snapshot == ["failure(the operation was cancelled)"])
    }

    /// A non-blocking connect to 127.0.0.1:`port`, left in whatever state it reaches.
    static func startConnect(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        _ = Loopback.connect(fd, port: port)
        return fd
    }

    /// How a write the peer never takes is made to end.
    enum WriteEnd: CustomTestStringConvertible, Sendable {
        case timeout(Duration), cancelWrites

        var testDescription: String {
            switch self {
            case .timeout(let timeout): return "timeout \(timeout)"
            case .cancelWrites: return "cancelWrites()"
            }
        }
    }

    /// A write the peer never takes (16 MiB; the peer never reads) ends with `.timedOut` after its timeout,
    /// or with `.cancelled` when `cancelWrites()` is called right after it started; the writes after it fail
    /// the same way (how much was sent is unknown), nothing stays queued, and close releases everything.
    /// Both ends also come while the write's first send is finishing in part: `cancelWrites()` in the task
    /// that started it, before its completion is taken, and a zero timeout, whose timer may fire before it.
    @Test(arguments: IOVariant.available, [WriteEnd.timeout(.zero), .timeout(.milliseconds(50)), .cancelWrites])
    func aWriteThePeerNeverTakesEnds(variant: IOVariant, end: WriteEnd) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let (_, client, connection) = try await AcceptedPair.make(on: loop)
        defer { close(client) }
        let outcome = OrderLog<Result<Void, EventLoopError>>()
        try await loop.perform {
            switch end {
            case .timeout(let timeout):
                connection.write([UInt8](repeating: 1, count: 16 * 1024 * 1024), timeout: timeout) { outcome.append($0) }
            case .cancelWrites:
                connection.write([UInt8](repeating: 1, count: 16 * 1024 * 1024)) { outcome.append($0) }
                connection.cancelWrites()
            }
        }
        try #require(await awaitCondition(seconds: 10) { outcome.count == 1 }, "the write ends")
        try await loop.perform { connection.write([2]) { outcome.append($0) } }
        #expect(await awaitCondition(seconds: 10) { outcome.count == 2 })
        let errors = outcome.snapshot.map { result -> EventLoopError? in
            if case .failure(let error) = result { return error } else { return nil }
        }
        let expected: EventLoopError = if case .timeout = end { .timedOut } else { .cancelled }
        #expect(errors == [expected, expected], "the write ends, and a later write fails the same way")
        #expect(try await loop.perform { connection.pendingWriteBytes } == 0)
        let closed = Counter()
        try await loop.perform { connection.close { closed.increment() } }
        #expect(await awaitCondition(seconds: 10) { closed.count == 1 }, "close completes")
        #expect(try await loop.perform { loop.receiveBuffersInUse } == 0)
    }

    /// A read awaited in a task that is cancelled ends with `.cancelled`; the data comes with the next read.
    @Test(arguments: IOVariant.available)
    func taskCancellationCancelsARead(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let (_, client, connection) = try await AcceptedPair.make(on: loop)
        defer { close(client) }
        let reading = Task { try await connection.read() }
        reading.cancel()
        await #expect(throws: EventLoopError.cancelled) { _ = try await reading.value }
        var byte: UInt8 = 5
        #expect(EchoClient.send(client, &byte, 1) == 1)
        #expect(try await connection.read(timeout: .seconds(10))?.bytes == [5])
    }

    /// Dropping the sequence of accepted connections closes the listener; connections already accepted stay.
    @Test(arguments: IOVariant.available)
    func droppingTheConnectionSequenceClosesTheListener(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let (listener, client, connection) = try await AcceptedPair.make(on: loop) // drops its iterator
        defer { close(client) }
        #expect(await awaitCondition(seconds: 10) { (try? EchoClient.refuses(port: listener.port)) == true })
        try await connection.write([3])
        var byte: UInt8 = 0
        #expect(EchoClient.recv(client, &byte, 1) == 1 && byte == 3, "the accepted connection still works")
    }

    /// The loop's termination cancels what is in flight and closes its sockets.
    @Test(arguments: IOVariant.available)
    func loopShutdownClosesSocketsAndCancelsOperations(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        let (listener, client, connection) = try await AcceptedPair.make(on: loop)
        defer { close(client) }
        let outcome = OrderLog<String>()
        try await loop.perform { connection.read { outcome.append("\($0.map { _ in "data" })") } }
        await loop.shutdown()
        #expect(outcome.snapshot == ["failure(the operation was cancelled)"])
        var byte: UInt8 = 0
        #expect(EchoClient.recv(client, &byte, 1) == 0, "the loop closed the accepted socket")
        #expect(try EchoClient.refuses(port: listener.port), "the loop closed the listener")
    }
}
