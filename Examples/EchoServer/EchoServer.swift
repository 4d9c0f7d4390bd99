import Glibc
import LoopKit

/// A TCP echo server on 127.0.0.1, built only on `EventLoop`'s file-descriptor API and Glibc sockets:
/// one non-blocking listening socket and one non-blocking socket per client, each registered with the
/// loop (`.owned`, so a loop shutdown closes whatever is still open).
///
/// Threading: `start(port:)`, `stop()` and `connectionCount` may be called from any thread; they are
/// `async` and hop onto the loop thread with `EventLoop.perform`. All other state (the listener, the
/// connection table, the buffers) is read and written only on the loop thread, by tasks and fd handlers.
/// That confinement is what makes the `@unchecked Sendable` conformance sound. While sockets are
/// registered, the loop's handlers keep the server alive.
///
/// Back-pressure: while a connection holds echoed bytes the peer has not taken yet, the server watches
/// it for `.write` only and stops reading from it; once the backlog is written it watches `.read` again.
/// A connection is closed (unregistered, then closed) on end of file, hang-up or error. A peer that
/// half-closes its side still gets back everything it sent before the server closes.
public final class EchoServer: @unchecked Sendable {
    private let loop: EventLoop
    private let sendBufferSize: Int32?

    // MARK: Loop-thread state

    private var listener: Int32 = -1
    private var connections: [Int32: Connection] = [:]
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// One client: the bytes read but not yet echoed back, and the interest currently registered.
    private final class Connection {
        var backlog: [UInt8] = []
        var sent = 0 // bytes of `backlog` already written
        var interest: IOEvents = .read
        var hasBacklog: Bool { sent < backlog.count }
    }

    /// Creates a server that will run on `loop`. Nothing happens until `start(port:)`.
    ///
    /// - Parameter sendBufferSize: `SO_SNDBUF` for each accepted socket; nil keeps the kernel's
    ///   auto-tuned size (megabytes on loopback). A small one makes a slow reader push the server into
    ///   its back-pressure path early.
    public init(loop: EventLoop, sendBufferSize: Int? = nil) {
        self.loop = loop
        self.sendBufferSize = sendBufferSize.map { Int32(clamping: $0) }
    }

    /// Listens on 127.0.0.1:`port` (0: a free port the kernel picks) and returns the bound port. Any thread.
    ///
    /// - Throws: `EventLoopError.system` when a socket call fails; `.alreadyRegistered` when the server is
    ///   already started; `.terminated` when the loop no longer runs tasks.
    @discardableResult
    public func start(port: UInt16 = 0) async throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EventLoopError.system(operation: "socket", errno: errno) }
        do {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = in_addr_t(INADDR_LOOPBACK).bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            try withUnsafeMutablePointer(to: &address) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                    guard bind(fd, raw, length) == 0 else { throw EventLoopError.system(operation: "bind", errno: errno) }
                    guard listen(fd, SOMAXCONN) == 0 else { throw EventLoopError.system(operation: "listen", errno: errno) }
                    guard getsockname(fd, raw, &length) == 0 else {
                        throw EventLoopError.system(operation: "getsockname", errno: errno)
                    }
                }
            }
            try await loop.perform { [self] in
                guard listener < 0 else { throw EventLoopError.alreadyRegistered(fd: listener) }
                try loop.register(fd: fd, events: .read, ownership: .owned) { [self] _ in acceptAll() }
                listener = fd
            }
            return UInt16(bigEndian: address.sin_port)
        } catch {
            close(fd) // never registered: every throw above comes before or from `register`
            throw error
        }
    }

    /// Stops listening and closes every connection (each is unregistered, then closed). Any thread. The
    /// server may be started again afterwards.
    ///
    /// - Throws: `EventLoopError.terminated` when the loop no longer runs tasks (its shutdown has then
    ///   already closed the server's sockets, which are registered `.owned`).
    public func stop() async throws {
        try await loop.perform { [self] in
            for fd in Array(connections.keys) { closeConnection(fd) }
            if listener >= 0 {
                try? loop.unregister(fd: listener)
                close(listener)
                listener = -1
            }
        }
    }

    /// The number of open client connections. Any thread.
    public var connectionCount: Int {
        get async throws { try await loop.perform { [self] in connections.count } }
    }

    // MARK: Loop thread

    /// Accepts every pending connection. A failure other than "none left" (EMFILE, say) leaves the
    /// listener readable, so the loop reports it again and the accept is retried.
    private func acceptAll() {
        while listener >= 0 {
            let client = accept(listener, nil, nil) // (Glibc does not export accept4)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return // EAGAIN: none left; anything else: retried at the next report
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            guard fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK) == 0 else {
                close(client)
                continue
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if var size = sendBufferSize {
                setsockopt(client, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            do {
                try loop.register(fd: client, events: .read, ownership: .owned) { [self] events in
                    serve(client, events)
                }
                connections[client] = Connection()
            } catch {
                close(client)
            }
        }
    }

    /// One readiness report for a client: write the backlog if there is one, else read and echo.
    private func serve(_ fd: Int32, _ events: IOEvents) {
        guard let connection = connections[fd] else { return }
        if connection.hasBacklog {
            flush(fd, connection) // a failed write (error, hang-up) closes the connection
            return
        }
        let n = readBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            connection.backlog.append(contentsOf: readBuffer[0..<n])
            flush(fd, connection)
        } else if n == 0 {
            closeConnection(fd) // end of file, with nothing left to echo
        } else if (errno != EAGAIN && errno != EINTR) || events.contains(.error) {
            closeConnection(fd)
        }
    }

    /// Writes as much of the backlog as the socket takes, then watches `.write` while some is left and
    /// `.read` once it is all written.
    private func flush(_ fd: Int32, _ connection: Connection) {
        while connection.hasBacklog {
            let start = connection.sent
            let n = connection.backlog.withUnsafeBytes {
                send(fd, $0.baseAddress! + start, $0.count - start, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                connection.sent += n
            } else if n < 0 && errno == EAGAIN {
                break
            } else if n >= 0 || errno != EINTR {
                closeConnection(fd)
                return
            }
        }
        if !connection.hasBacklog {
            connection.backlog.removeAll(keepingCapacity: true)
            connection.sent = 0
        }
        let wanted: IOEvents = connection.hasBacklog ? .write : .read
        guard wanted != connection.interest else { return }
        do {
            try loop.modify(fd: fd, events: wanted)
            connection.interest = wanted
        } catch {
            closeConnection(fd)
        }
    }

    private func closeConnection(_ fd: Int32) {
        connections[fd] = nil
        try? loop.unregister(fd: fd) // before close: the loop must not watch a closed (reusable) number
        close(fd)
    }
}
