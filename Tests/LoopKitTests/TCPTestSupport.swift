import Glibc
import Testing
import TestSupport

/// IPv4 loopback sockets made with plain system calls, for the tests' own peers (listeners, clients).
enum Loopback {
    /// 127.0.0.1:`port` (port 0: any, when binding).
    static func address(port: UInt16 = 0) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = in_addr_t(INADDR_LOOPBACK).bigEndian
        return address
    }

    /// `connect(2)` of `fd` to 127.0.0.1:`port`: 0, or -1 with errno set.
    static func connect(_ fd: Int32, port: UInt16) -> Int32 {
        var address = address(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// A socket listening on 127.0.0.1 (any port) with `backlog`, close-on-exec: its fd (the caller closes
    /// it) and its port.
    static func listener(backlog: Int32) throws -> (fd: Int32, port: UInt16) {
        try bound(listening: backlog)
    }

    /// A TCP socket bound to 127.0.0.1 (any port) and never listening, close-on-exec: its fd (the caller
    /// closes it) and its port. Connections to the port are refused while it is open, and no other socket
    /// takes the port meanwhile (neither a parallel test's listener nor a connect's own source port, which
    /// could otherwise connect to itself): unlike a closed listener's port, which is free for either.
    static func refusingPort() throws -> (fd: Int32, port: UInt16) {
        try bound(listening: nil)
    }

    private static func bound(listening backlog: Int32?) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0, "socket: errno \(errno)")
        var address = address()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && (backlog.map { listen(fd, $0) == 0 } ?? true)
                    && getsockname(fd, $0, &length) == 0
            }
        }
        if !ok {
            let error = errno
            close(fd)
            try #require(ok, "listener: errno \(error)")
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }
}

extension CallbackEcho {
    /// Runs `clients` blocking clients, each on a thread of its own (off the cooperative pool), each sending
    /// `size` bytes through the echo and checking them (`EchoClient.roundTrip`, client i seeded `seed + i`).
    /// Returns the failures, "client i: ..." each.
    func roundTrips(clients: Int, seed: UInt64, size: Int) async -> [String] {
        let failures = OrderLog<String>()
        let port = listener.port
        await blocking {
            runOnThreads(clients) { index in
                if let failure = EchoClient.roundTrip(port: port, seed: seed + UInt64(index), size: size) {
                    failures.append("client \(index): \(failure)")
                }
            }
        }
        return failures.snapshot
    }
}

/// Calls `call`, a blocking socket call (-1 with errno on failure), again while it fails with EINTR, and returns
/// its last result. The tests' clients set SO_RCVTIMEO and SO_SNDTIMEO, so that a server bug fails a test
/// instead of hanging it, and the kernel never restarts such a socket's interrupted recv, send or connect,
/// not even an interruption no handler sees: a stop and continue of the process (SIGSTOP and SIGCONT, a
/// cgroup freeze) fails every one blocked at that moment with EINTR (signal(7)). Each call waits again up to
/// the socket's timeout.
func restartingInterrupted<Result: BinaryInteger>(_ call: () -> Result) -> Result {
    while true {
        let result = call()
        if result != -1 || errno != EINTR { return result }
    }
}

extension EchoClient {
    /// `recv(2)` on a client socket, restarted when interrupted (`restartingInterrupted`).
    static func recv(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        restartingInterrupted { Glibc.recv(fd, buffer, count, 0) }
    }

    /// `send(2)` (MSG_NOSIGNAL) on a client socket, restarted when interrupted (`restartingInterrupted`).
    static func send(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        restartingInterrupted { Glibc.send(fd, bytes, count, Int32(MSG_NOSIGNAL)) }
    }
}
