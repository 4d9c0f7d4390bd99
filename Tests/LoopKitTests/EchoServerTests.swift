import EchoServer
import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// The example echo server, driven by real TCP clients on their own threads (blocking sockets with
/// send/receive timeouts, so a server bug fails the test instead of hanging it).
@Suite struct EchoServerTests {
    /// Concurrent clients, some reading late against a small send buffer, each get back every byte they sent, in
    /// order, on both backends; each connection is closed after its end of file, and after stop() the port refuses
    /// connections.
    @Test(arguments: LoopBackends.available)
    func concurrentClientsGetBackEveryByte(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        defer { loop.shutdownForCleanup() }
        // A small send buffer per connection, and clients that read late: the server must buffer,
        // watch .write, and resume reading once its backlog is written.
        let server = EchoServer(loop: loop, sendBufferSize: 4096)
        let port = try await server.start(port: 0)
        #expect(port != 0)

        let clients = 8
        let size = 64 * 1024
        let failures = OrderLog<String>()
        await blocking {
            runOnThreads(clients) { index in
                let holdBack = index.isMultiple(of: 2) ? 32 * 1024 : 0
                if let failure = EchoClient.roundTrip(port: port, seed: UInt64(index + 1), size: size, holdBack: holdBack) {
                    failures.append("client \(index): \(failure)")
                }
            }
        }
        #expect(failures.snapshot == [])
        // Each client read until end of file, which the server sends only by closing its side.
        #expect(try await server.connectionCount == 0)

        try await server.stop()
        try EchoClient.expectRefused(port: port, backend: backend, "stop() closes the listener")
    }

    /// stop() closes every open connection: the server counts none and the client reads end of file.
    @Test(arguments: LoopBackends.available)
    func stopClosesOpenConnections(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        defer { loop.shutdownForCleanup() }
        let server = EchoServer(loop: loop)
        let port = try await server.start()
        let fd = try EchoClient.connect(port: port)
        try #require(fd >= 0, "connect: errno \(-fd)")
        defer { close(fd) }
        // One echoed byte proves the server has accepted and registered the connection.
        var byte: UInt8 = 7
        #expect(EchoClient.send(fd, &byte, 1) == 1)
        byte = 0
        #expect(EchoClient.recv(fd, &byte, 1) == 1 && byte == 7)
        #expect(try await server.connectionCount == 1)

        try await server.stop()
        #expect(try await server.connectionCount == 0)
        #expect(EchoClient.recv(fd, &byte, 1) == 0, "the server closed its side (errno \(errno))")
    }

    /// Shutting the loop down closes the server's sockets it owns (the loop closes owned fds): clients see end of
    /// file and the port refuses connections.
    @Test(arguments: LoopBackends.available)
    func loopShutdownClosesTheServersOwnedSockets(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let server = EchoServer(loop: loop)
        let port = try await server.start()
        let fd = try EchoClient.connect(port: port)
        try #require(fd >= 0, "connect: errno \(-fd)")
        defer { close(fd) }
        var byte: UInt8 = 9
        #expect(EchoClient.send(fd, &byte, 1) == 1)
        #expect(EchoClient.recv(fd, &byte, 1) == 1)

        await loop.shutdown()
        #expect(EchoClient.recv(fd, &byte, 1) == 0, "the loop closed the accepted socket (errno \(errno))")
        try EchoClient.expectRefused(port: port, backend: backend, "the loop closed the listener")
        await #expect(throws: EventLoopError.terminated) { try await server.stop() }
    }
}

/// A blocking TCP client for `EchoServerTests`.
enum EchoClient {
    static let timeoutSeconds = 5

    /// Connects to 127.0.0.1:`port` with send and receive timeouts and a small receive buffer (so the
    /// server meets a full socket and must buffer). Returns the socket, or -errno when connect fails.
    static func connect(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0, "socket: errno \(errno)")
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        let timeoutSize = socklen_t(MemoryLayout<timeval>.size)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, timeoutSize)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, timeoutSize)
        var value: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, socklen_t(MemoryLayout<Int32>.size))
        value = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, socklen_t(MemoryLayout<Int32>.size))
        // An interrupted connect goes on in the kernel: connecting again waits for it (EISCONN: it completed).
        if restartingInterrupted({ Loopback.connect(fd, port: port) }) == 0 || errno == EISCONN { return fd }
        let error = errno
        close(fd)
        return -error
    }

    /// Whether 127.0.0.1:`port` refuses a connection now (one that is accepted is closed at once).
    static func refuses(port: UInt16) throws -> Bool {
        let fd = try connect(port: port)
        if fd >= 0 { close(fd) }
        return fd == -ECONNREFUSED
    }

    /// Expects 127.0.0.1:`port` to refuse connections, the listener having been unregistered and closed.
    ///
    /// Expects `port` to refuse connections at once: closing the server's sockets (by `stop()` or by a loop
    /// shutdown) must release them immediately, on both backends.
    static func expectRefused(port: UInt16, backend: PollBackend, _ comment: Comment,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let refusedAtOnce = try refuses(port: port)
        #expect(refusedAtOnce, comment, sourceLocation: sourceLocation)
    }

    /// Sends `size` pseudo-random bytes (from `seed`) in chunks of varying sizes on one thread while
    /// another reads the echo in reads of varying sizes until end of file, then checks every byte. The
    /// reader starts once `holdBack` bytes are sent (or the writer stopped), so the echo backs up first.
    /// Returns a description of the first failure, or nil.
    static func roundTrip(port: UInt16, seed: UInt64, size: Int, holdBack: Int = 0) -> String? {
        var random = XorShift(seed: seed)
        let payload = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let fd: Int32
        do { fd = try connect(port: port) } catch { return "\(error)" }
        guard fd >= 0 else { return "connect: errno \(-fd)" }
        defer { close(fd) }

        let failures = OrderLog<String>()
        let received = OrderLog<[UInt8]>()
        let sent = Atomic<Int>(0) // bytes sent so far; Int.max once the writer stopped
        runOnThreads(2) { role in
            var random = XorShift(seed: seed &* 7919 &+ UInt64(role))
            if role == 0 {
                var offset = 0
                while offset < size {
                    let chunk = min(size - offset, 1 + Int(random.next() % 6000))
                    let n = payload.withUnsafeBytes { EchoClient.send(fd, $0.baseAddress! + offset, chunk) }
                    if n <= 0 {
                        failures.append("send at \(offset) of \(size): errno \(errno)")
                        break
                    }
                    offset += n
                    sent.store(offset, ordering: .releasing)
                }
                sent.store(.max, ordering: .releasing)
                shutdown(fd, Int32(SHUT_WR)) // the server echoes what is left, then closes
            } else {
                if !waitUntil(seconds: Double(timeoutSeconds), { sent.load(ordering: .acquiring) >= holdBack }) {
                    failures.append("the writer is stuck before \(holdBack) bytes")
                }
                var data = [UInt8]()
                data.reserveCapacity(size)
                var buffer = [UInt8](repeating: 0, count: 8192)
                while true {
                    let want = 1 + Int(random.next() % UInt64(buffer.count))
                    let n = EchoClient.recv(fd, &buffer, want)
                    if n == 0 { break }
                    if n < 0 {
                        let e = errno
                        failures.append("recv after \(data.count) of \(size) bytes: errno \(e)")
                        break
                    }
                    data.append(contentsOf: buffer[0..<n])
                }
                received.append(data)
            }
        }
        if let failure = failures.snapshot.first { return failure }
        let data = received.snapshot.first ?? []
        guard data.count == size else { return "received \(data.count) bytes, sent \(size)" }
        if let index = data.indices.first(where: { data[$0] != payload[$0] }) {
            return "byte \(index) is \(data[index]), sent \(payload[index])"
        }
        return nil
    }

    /// xorshift64: fast, deterministic pseudo-random numbers.
    struct XorShift {
        private var state: UInt64
        init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
    }
}

