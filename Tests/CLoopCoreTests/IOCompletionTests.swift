import CLoopCore
import Glibc
import Testing
import TestSupport

/// lk_io.h on every backend, and on io_uring with and without the provided-buffer ring: receive into pool
/// buffers, multishot continuation, end of stream, send, cancellation, close, buffer accounting.
@Suite struct IOCompletionTests {
    enum Mode: CustomTestStringConvertible, Sendable {
        case epoll, uringRing, uringSingleShot
        static let available: [Mode] = Backends.ioUringAvailable ? [.epoll, .uringRing, .uringSingleShot] : [.epoll]
        var testDescription: String { "\(self)" }
    }

    final class Harness {
        let wake: OpaquePointer
        let poller: OpaquePointer
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 8 * 4096, alignment: 64)
        var completions: [lk_io_completion] = []

        init(_ mode: Mode) throws {
            var w: OpaquePointer?
            try #require(lk_wake_create(&w) == 0)
            var p: OpaquePointer?
            let rc = lk_poller_create_for_testing(&p, mode == .epoll ? LK_BACKEND_EPOLL : LK_BACKEND_IO_URING, lk_wake_fd(w), nil)
            if rc != 0 { lk_wake_destroy(w) }
            try #require(rc == 0)
            wake = w!
            poller = p!
            let flags = mode == .uringSingleShot ? UInt32(LK_IO_NO_BUFFER_RING) : 0
            try #require(lk_io_setup(poller, memory, 8, 4096, flags) == 0)
            #expect(lk_io_setup(poller, memory, 8, 4096, flags) == -EINVAL, "set up once")
        }

        deinit {
            lk_poller_destroy(poller)
            lk_wake_destroy(wake)
            memory.deallocate()
        }

        /// Polls until `count` completions have arrived in total (bounded); returns whether they did.
        @discardableResult
        func collect(_ count: Int, seconds: Double = 10) -> Bool {
            var events = [lk_poll_event](repeating: lk_poll_event(), count: 8)
            var batch = [lk_io_completion](repeating: lk_io_completion(), count: 16)
            let deadline = TestDeadline(seconds: seconds)
            while completions.count < count && !deadline.hasExpired {
                var woken = false
                _ = lk_poller_wait(poller, 50_000_000, &events, Int32(events.count), &woken)
                let n = lk_io_completions(poller, &batch, Int32(batch.count))
                completions += batch.prefix(Int(n))
            }
            return completions.count >= count
        }

        /// One poll that does not block: submits what was started and takes what completed.
        func pollOnce() {
            var events = [lk_poll_event](repeating: lk_poll_event(), count: 8)
            var batch = [lk_io_completion](repeating: lk_io_completion(), count: 16)
            var woken = false
            _ = lk_poller_wait(poller, 0, &events, Int32(events.count), &woken)
            let n = lk_io_completions(poller, &batch, Int32(batch.count))
            completions += batch.prefix(Int(n))
        }

        func bytes(of c: lk_io_completion) -> [UInt8] {
            Array(UnsafeRawBufferPointer(start: lk_io_buffer(poller, c.buffer), count: Int(c.result)))
        }
    }

    static func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    static let more = UInt32(LK_IO_F_MORE), buffer = UInt32(LK_IO_F_BUFFER)

    @Test(arguments: Mode.available)
    func receiveSendAndEndOfStream(mode: Mode) throws {
        let h = try Harness(mode)
        let (a, b) = Self.socketPair()
        defer { close(a) }
        #expect(lk_io_uses_buffer_ring(h.poller) == (mode == .uringRing))
        let id = lk_io_recv(h.poller, a, 7)
        try #require(id >= 0)
        var payload: [UInt8] = [1, 2, 3]
        #expect(write(b, &payload, 3) == 3)
        try #require(h.collect(1))
        var c = h.completions[0]
        #expect(c.token == 7 && c.result == 3 && c.flags == Self.more | Self.buffer)
        #expect(h.bytes(of: c) == [1, 2, 3])
        #expect(lk_io_buffers_lent(h.poller) == 1)
        lk_io_buffer_release(h.poller, c.buffer)
        #expect(lk_io_buffers_lent(h.poller) == 0)

        // The operation goes on: a second chunk, then end of stream ends it.
        payload = [4]
        #expect(write(b, &payload, 1) == 1)
        try #require(h.collect(2))
        c = h.completions[1]
        #expect(c.result == 1 && c.flags & Self.more != 0 && h.bytes(of: c) == [4])
        lk_io_buffer_release(h.poller, c.buffer)
        close(b)
        try #require(h.collect(3))
        c = h.completions[2]
        #expect(c.token == 7 && c.result == 0 && c.flags == 0, "end of stream: final, no buffer")
        #expect(lk_io_in_flight(h.poller) == 0)
        #expect(lk_io_cancel(h.poller, id) == -ENOENT, "an ended operation cannot be cancelled")
    }

    @Test(arguments: Mode.available)
    func cancelEndsAPendingReceiveAndCloseClosesTheFd(mode: Mode) throws {
        let h = try Harness(mode)
        let (a, b) = Self.socketPair()
        defer { close(b) }
        let id = lk_io_recv(h.poller, a, 1)
        try #require(id >= 0)
        h.pollOnce() // the receive is submitted (io_uring: the cancellation below reaches the kernel's request)
        #expect(h.completions.isEmpty, "nothing to receive yet")
        #expect(lk_io_cancel(h.poller, id) == 0)
        #expect(lk_io_cancel(h.poller, id) == -EALREADY || mode == .epoll)
        try #require(h.collect(1))
        #expect(h.completions[0].result == -ECANCELED && h.completions[0].flags == 0)
        #expect(lk_io_buffers_lent(h.poller) == 0)

        var data = [UInt8](repeating: 9, count: 100)
        let sendID = data.withUnsafeBytes { lk_io_send(h.poller, a, $0.baseAddress, 100, 2) }
        try #require(sendID >= 0)
        try #require(h.collect(2))
        #expect(h.completions[1].token == 2 && h.completions[1].result == 100)
        #expect(read(b, &data, 100) == 100)

        try #require(lk_io_close(h.poller, a, 3) >= 0)
        try #require(h.collect(3))
        #expect(h.completions[2].token == 3 && h.completions[2].result == 0)
        // Closed: the peer reads end of stream (fd numbers are reused by parallel tests, so fcntl cannot tell).
        var byte: UInt8 = 0
        #expect(read(b, &byte, 1) == 0, "the peer sees end of stream (errno \(errno))")
        #expect(lk_io_in_flight(h.poller) == 0)
    }

    /// With every buffer lent, a receive waits (no completion, no error) and resumes once one comes back.
    @Test(arguments: Mode.available)
    func aReceiveWithNoFreeBufferWaitsForOne(mode: Mode) throws {
        let h = try Harness(mode)
        let (a, b) = Self.socketPair()
        defer { close(a); close(b) }
        try #require(lk_io_recv(h.poller, a, 1) >= 0)
        var byte: UInt8 = 0
        for i in 0..<8 {
            byte = UInt8(i)
            #expect(write(b, &byte, 1) == 1)
            try #require(h.collect(i + 1))
        }
        #expect(lk_io_buffers_lent(h.poller) == 8)
        byte = 8
        #expect(write(b, &byte, 1) == 1)
        #expect(!h.collect(9, seconds: 0.2), "no buffer: nothing can be delivered")
        lk_io_buffer_release(h.poller, h.completions[0].buffer)
        try #require(h.collect(9))
        let c = h.completions[8]
        #expect(c.result == 1 && h.bytes(of: c) == [8] && c.flags & Self.more != 0, "resumed, nothing lost")
    }

    @Test(arguments: Mode.available)
    func badInputIsAnErrno(mode: Mode) throws {
        let h = try Harness(mode)
        #expect(lk_io_recv(h.poller, -1, 0) == -EINVAL)
        #expect(lk_io_send(h.poller, 0, nil, 1, 0) == -EINVAL)
        #expect(lk_io_cancel(h.poller, 12345) == -ENOENT)
        #expect(lk_io_cancel(h.poller, -1) == -ENOENT)
    }
}
