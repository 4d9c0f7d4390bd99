import Glibc
import Histogram
import LoopKitConcurrencyHelpers

/// The load generator every echo entrant faces (EchoLatency, EchoThroughput, ConnectionChurn): blocking
/// TCP clients on threads of its own, fixed counts, TCP_NODELAY, and every echoed byte checked against what
/// was sent (a mismatch stops the run: a wrong echo must not be measured as a fast one).
enum EchoLoad {
    static let messageSize = 64

    /// A connected blocking socket to 127.0.0.1:`port`.
    static func connect(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0, "socket: errno \(errno)")
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = in_addr_t(INADDR_LOOPBACK).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(rc == 0, "connect to 127.0.0.1:\(port): errno \(errno)")
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            precondition(n > 0 || errno == EINTR, "echo client send: errno \(errno)")
            if n > 0 { offset += n }
        }
    }

    /// Reads exactly `into.count` bytes and checks them against `expected`.
    static func receiveAndCheck(_ fd: Int32, _ into: UnsafeMutableRawBufferPointer, expected: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < into.count {
            let n = recv(fd, into.baseAddress! + offset, into.count - offset, 0)
            precondition(n > 0 || (n < 0 && errno == EINTR), "echo client recv: \(n == 0 ? "end of stream" : "errno \(errno)") after \(offset) of \(into.count) bytes")
            if n > 0 { offset += n }
        }
        precondition(memcmp(into.baseAddress!, expected.baseAddress!, into.count) == 0, "the echo differs from what was sent")
    }

    /// Bytes for message `index` of connection `connection`: every message differs from its neighbours.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer, connection: Int, index: Int) {
        for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: connection &* 31 &+ index &* 7 &+ i) }
    }

    /// Half-closes, waits for the server's end of stream, closes: the server closes first, so no client port
    /// waits in TIME_WAIT and churn cannot run out of ephemeral ports.
    static func closeGracefully(_ fd: Int32) {
        shutdown(fd, Int32(SHUT_WR))
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        precondition(n == 0, "expected end of stream from the echo server, got \(n) (errno \(errno))")
        close(fd)
    }

    /// One connection, `roundTrips` sequential 64-byte round trips; the latency of each.
    /// Untimed round trips before `latency` measures.
    static let latencyWarmUp = 1_000

    static func latency(port: UInt16, roundTrips: Int, warmUp: Int = latencyWarmUp) -> (histogram: Histogram<UInt64>, totalNs: Int64) {
        let fd = connect(port: port)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: messageSize, alignment: 8)
        let back = UnsafeMutableRawBufferPointer.allocate(byteCount: messageSize, alignment: 8)
        defer { out.deallocate(); back.deallocate() }
        var histogram = makeHistogram()
        var total: Int64 = 0
        for i in 0..<(warmUp + roundTrips) {
            fill(out, connection: 0, index: i)
            let start = now()
            sendAll(fd, UnsafeRawBufferPointer(out))
            receiveAndCheck(fd, back, expected: UnsafeRawBufferPointer(out))
            let elapsed = now() - start
            if i >= warmUp {
                total += elapsed
                histogram.record(UInt64(elapsed))
            }
        }
        closeGracefully(fd)
        return (histogram, total)
    }

    /// `connections` connections, one thread each, each sending `messages` 64-byte messages in windows of
    /// `window` (sent together, then read back and checked). Returns the wall time from the first send to
    /// the last check.
    static func throughput(port: UInt16, connections: Int, messages: Int, window: Int) -> Int64 {
        let fds = (0..<connections).map { _ in connect(port: port) }
        let gate = StartGate(threads: connections)
        let start = gate.run { c in
            let size = messageSize * window
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
            let back = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
            defer { out.deallocate(); back.deallocate() }
            gate.arriveAndWait()
            var sent = 0
            while sent < messages {
                let count = Swift.min(window, messages - sent)
                let part = UnsafeMutableRawBufferPointer(rebasing: out[0..<(count * messageSize)])
                for m in 0..<count {
                    fill(UnsafeMutableRawBufferPointer(rebasing: part[(m * messageSize)..<((m + 1) * messageSize)]), connection: c, index: sent + m)
                }
                sendAll(fds[c], UnsafeRawBufferPointer(part))
                receiveAndCheck(fds[c], UnsafeMutableRawBufferPointer(rebasing: back[0..<part.count]), expected: UnsafeRawBufferPointer(part))
                sent += count
            }
        }
        let elapsed = now() - start
        for fd in fds { closeGracefully(fd) }
        return elapsed
    }

    /// `total` connections over `threads` threads: connect, one 64-byte round trip, close. Wall time.
    static func churn(port: UInt16, total: Int, threads: Int) -> Int64 {
        let gate = StartGate(threads: threads)
        let start = gate.run { t in
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: messageSize, alignment: 8)
            let back = UnsafeMutableRawBufferPointer.allocate(byteCount: messageSize, alignment: 8)
            defer { out.deallocate(); back.deallocate() }
            gate.arriveAndWait()
            for i in stride(from: t, to: total, by: threads) {
                let fd = connect(port: port)
                fill(out, connection: t, index: i)
                sendAll(fd, UnsafeRawBufferPointer(out))
                receiveAndCheck(fd, back, expected: UnsafeRawBufferPointer(out))
                closeGracefully(fd)
            }
        }
        return now() - start
    }
}
