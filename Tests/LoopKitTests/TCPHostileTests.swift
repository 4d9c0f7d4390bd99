import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// Peers and conditions that try to break a TCP server: resets mid-write, a client that never reads,
/// connection churn, a receive buffer pool that runs dry, fd exhaustion on accept.
@Suite struct TCPHostileTests {
    /// A peer that resets while a large write (16 MiB) is in flight: the write fails with `.connectionReset`, the
    /// connection closes cleanly and every buffer is back.
    @Test(arguments: IOVariant.available)
    func peerResetMidWriteFailsTheWrite(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let (_, client, connection) = try await AcceptedPair.make(on: loop)
        let outcome = OrderLog<Result<Void, EventLoopError>>()
        try await loop.perform {
            connection.write([UInt8](repeating: 1, count: 16 * 1024 * 1024)) { outcome.append($0) }
            connection.write([2]) { outcome.append($0) }
        }
        // Take some of it, so the reset lands in the middle of the write.
        #expect(await blocking { var sink = [UInt8](repeating: 0, count: 4096); return EchoClient.recv(client, &sink, sink.count) } > 0)
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(client)
        #expect(await awaitCondition(seconds: 10) { outcome.count == 2 })
        let results = outcome.snapshot.map { result -> EventLoopError? in
            if case .failure(let error) = result { return error } else { return nil }
        }
        #expect(results.first == .connectionReset, "the write in flight sees the reset")
        #expect(results.last == .connectionReset, "the queued write fails with the same error")
        try await connection.close()
        #expect(try await loop.perform { loop.receiveBuffersInUse } == 0)
    }

    /// A client that sends and never reads: the echo server stops reading once its echo cannot be sent,
    /// so it holds at most one chunk in writes and a bounded number of receive buffers, however much the
    /// client sends; the client is then stuck on a full socket. Once it reads, every byte comes back.
    @Test(arguments: IOVariant.available)
    func aClientThatNeverReadsHoldsBoundedMemory(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let server = try await CallbackEcho(loop: loop)
        let client = try EchoClient.connect(port: server.listener.port)
        try #require(client >= 0)
        defer { close(client) }
        // Send until the socket stays full: no room for 250 ms (a bounded wait for the stall, not a sleep).
        let sent = await blocking { () -> Int in
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            var sent = 0
            while sent < 256 * 1024 * 1024 {
                for i in chunk.indices { chunk[i] = UInt8(truncatingIfNeeded: sent + i) }
                let n = EchoClient.send(client, &chunk, chunk.count)
                if n > 0 {
                    sent += n
                    continue
                }
                if errno != EAGAIN { return -Int(errno) }
                var fds = pollfd(fd: client, events: Int16(POLLOUT), revents: 0)
                if poll(&fds, 1, 250) == 0 { break }
            }
            return sent
        }
        try #require(sent > 0, "send: errno \(-sent)")
        #expect(sent < 256 * 1024 * 1024, "the server stopped taking data")
        let (pending, lent) = try await loop.perform { (server.maxPendingWriteBytes, loop.receiveBuffersInUse) }
        #expect(pending <= 16 * 1024, "at most one chunk waits to be written")
        // The read-ahead pauses at maxQueuedChunks. With a buffer ring the kernel goes on filling buffers until
        // the pause's cancellation lands (as many as it delivered while the loop was busy): then the bound is
        // the pool, shared by every connection. Either way it does not grow with what the client sent.
        let bound = variant == .ioUringBufferRing ? 256 : 2 * TCPConnection.maxQueuedChunks + 1
        #expect(lent <= bound, "receive buffers held stay bounded: \(lent)")
        #expect(try await loop.perform { loop.receiveBuffersInUse } == lent, "stalled: holding no more")

        // Reading now gets back every byte, in order.
        let (received, mismatch, end) = await blocking { () -> (Int, Int?, String) in
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) & ~O_NONBLOCK)
            shutdown(client, Int32(SHUT_WR))
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            var received = 0
            var mismatch: Int?
            while true {
                let n = EchoClient.recv(client, &chunk, chunk.count)
                if n <= 0 { return (received, mismatch, n == 0 ? "end of stream" : "errno \(errno)") }
                for i in 0..<n where mismatch == nil && chunk[i] != UInt8(truncatingIfNeeded: received + i) {
                    mismatch = received + i
                }
                received += n
            }
        }
        #expect(received == sent && mismatch == nil,
                "echoed \(received) of \(sent) bytes (recv: \(end)); first mismatch at \(String(describing: mismatch))")
    }

    /// 10,000 connections, each connected, given one round trip and closed (the server closes first, so no
    /// client port waits in TIME_WAIT): every one is accepted and served, and nothing stays open.
    @Test(arguments: LoopBackends.available)
    func tenThousandConnectionsOpenedAndClosed(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        defer { loop.shutdownForCleanup() }
        let listener = try TCPListener(on: loop)
        let served = Atomic<Int>(0)
        let open = Atomic<Int>(0)
        let failures = OrderLog<String>()
        try await loop.perform {
            listener.accept { result in
                guard case .success(let connection) = result else { return failures.append("accept: \(result)") }
                open.add(1, ordering: .relaxed)
                connection.read { result in
                    guard case .success(let byte?) = result else { failures.append("read: \(result)"); return connection.close() }
                    connection.write(byte) { _ in
                        connection.close { open.subtract(1, ordering: .relaxed); served.add(1, ordering: .relaxed) }
                    }
                }
            }
        }
        let total = stressCount(10_000, minimum: 1_000)
        let threads = 4
        let port = listener.port
        await blocking { runOnThreads(threads) { thread in
            for i in 0..<(total / threads) {
                guard let fd = try? EchoClient.connect(port: port), fd >= 0 else { return failures.append("connect \(thread).\(i)") }
                var byte = UInt8(truncatingIfNeeded: i)
                let ok = EchoClient.send(fd, &byte, 1) == 1 && EchoClient.recv(fd, &byte, 1) == 1
                    && byte == UInt8(truncatingIfNeeded: i) && EchoClient.recv(fd, &byte, 1) == 0
                close(fd)
                if !ok { return failures.append("round trip \(thread).\(i): errno \(errno)") }
            }
        } }
        #expect(failures.snapshot == [])
        #expect(await awaitCondition(seconds: 30) { served.load(ordering: .relaxed) == total })
        #expect(open.load(ordering: .relaxed) == 0)
        #expect(try await loop.perform { loop.receiveBuffersInUse } == 0)
    }

    /// A pool of two small buffers shared by four clients: receives keep running out of buffers (on
    /// io_uring's ring the kernel answers -ENOBUFS), wait for one to come back, and lose nothing.
    @Test(arguments: IOVariant.available)
    func aDryBufferPoolDelaysButLosesNothing(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration(readBufferCount: 2, readBufferSize: 512))
        defer { loop.shutdownForCleanup() }
        let server = try await CallbackEcho(loop: loop)
        #expect(await server.roundTrips(clients: 4, seed: 100, size: 64 * 1024) == [])
        #expect(await awaitCondition(seconds: 10) { server.openCount.load(ordering: .acquiring) == 0 })
    }

    /// Accepting with no fd to spare: the listener reports `.tooManyOpenFiles` and, once fds are freed,
    /// accepts the connection that waited. In a child process, whose RLIMIT_NOFILE it lowers.
    @Test func acceptWithoutFileDescriptorsRecovers() async {
        await #expect(processExitsWith: .success) {
            for backend in LoopBackends.available {
                if let failure = await TCPHostileTests.exhaustFileDescriptors(backend: backend) {
                    EchoClient.fail("\(backend): \(failure)")
                }
            }
        }
    }

    /// The body of `acceptWithoutFileDescriptorsRecovers`; a description of the failure, or nil.
    static func exhaustFileDescriptors(backend: PollBackend) async -> String? {
        do {
            let loop = try startedLoop(.testing(backend: backend))
            defer { loop.shutdownForCleanup() }
            let listener = try TCPListener(on: loop)
            let errors = OrderLog<EventLoopError>()
            let accepted = Atomic<Int>(0)
            try await loop.perform {
                listener.acceptRetryDelay = .milliseconds(2)
                listener.accept { result in
                    switch result {
                    case .success(let connection): accepted.add(1, ordering: .relaxed); connection.close()
                    case .failure(let error): errors.append(error)
                    }
                }
            }
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) // before the table fills
            var limit = rlimit(rlim_cur: 256, rlim_max: 256)
            var current = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &current)
            limit.rlim_max = current.rlim_max
            guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return "setrlimit: errno \(errno)" }
            var fillers: [Int32] = []
            while true {
                let fd = dup(0)
                if fd < 0 { break }
                fillers.append(fd)
            }
            guard errno == EMFILE else { return "dup stopped with errno \(errno)" }
            guard Loopback.connect(client, port: listener.port) == 0 else { return "connect: errno \(errno)" }
            guard await awaitCondition(seconds: 10, { errors.snapshot.contains(.tooManyOpenFiles) }) else {
                return "no .tooManyOpenFiles; errors \(errors.snapshot), accepted \(accepted.load(ordering: .relaxed))"
            }
            guard accepted.load(ordering: .relaxed) == 0 else { return "accepted without an fd" }
            for fd in fillers { close(fd) }
            guard await awaitCondition(seconds: 10, { accepted.load(ordering: .relaxed) == 1 }) else {
                return "the listener did not recover; errors \(errors.snapshot)"
            }
            close(client)
            return nil
        } catch {
            return "\(error)"
        }
    }
}

extension EchoClient {
    /// Ends an exit test's child with a message on standard error.
    static func fail(_ message: String) -> Never {
        var line = message + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        exit(1)
    }
}
