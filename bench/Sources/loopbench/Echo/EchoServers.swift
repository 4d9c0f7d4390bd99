import CLibUV
import Dispatch
import Glibc
import LoopKit
import LoopKitConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// An echo server under test, made fresh for each run: it listens on 127.0.0.1 (a port of the kernel's
/// choice), echoes every byte on one thread of its own, and closes a connection at end of stream.
protocol EchoServer: AnyObject {
    /// Starts serving; returns the port.
    func start() throws -> UInt16
    /// CPU time the server's thread has used so far, ns (its thread CPU clock); nil when the server's work is
    /// spread over threads it shares with others (the async form runs on the global executor).
    func cpuNanoseconds() -> Int64?
    func stop()
}

/// How to make one kind of echo server.
struct EchoKind: Sendable {
    let name: String
    let family: EntrantKind.Family
    let make: @Sendable () -> any EchoServer

    /// LoopKit on each backend that works here (completion-based TCP), SwiftNIO (`ServerBootstrap` and an
    /// echo handler; `NIOAsyncChannel` for the async form), libuv (`uv_tcp`).
    static func all(_ plan: PlanContext) -> [EchoKind] {
        plan.backends.map { backend in
            EchoKind(name: "LoopKit \(backend)", family: .loopkit) { LoopKitEchoServer(backend: backend) }
        } + [
            EchoKind(name: "SwiftNIO", family: .peer) { NIOEchoServer() },
            EchoKind(name: "SwiftNIO async", family: .peer) { NIOAsyncEchoServer() },
            EchoKind(name: "libuv", family: .peer) { LibUVEchoServer() },
        ]
    }

    /// A contestant that runs `body` against a fresh server of this kind and adds the server's CPU per op.
    func contestant(ops: Int, _ body: @escaping @Sendable (UInt16) -> RunResult) -> Contestant {
        Contestant(name: name, family: family) {
            let server = make()
            let port = try server.start()
            let cpuBefore = server.cpuNanoseconds()
            var result = body(port)
            if let cpuBefore, let cpuAfter = server.cpuNanoseconds() {
                result.set(.serverCPUNsPerOp, Double(cpuAfter - cpuBefore) / Double(ops))
            }
            server.stop()
            return result
        }
    }
}

/// The CPU time `thread` has used, ns.
func threadCPUNanoseconds(_ thread: pthread_t) -> Int64 {
    var clock = clockid_t()
    guard pthread_getcpuclockid(thread, &clock) == 0 else { return 0 }
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// LoopKit: a loop with the default configuration on `backend`, a `TCPListener` and per connection the
/// read → write the same buffer → read cycle (no copy; one chunk in flight per connection).
final class LoopKitEchoServer: EchoServer, @unchecked Sendable { // start/stop from the controlling thread
    private let backend: PollBackend
    private var loop: LoopKit.EventLoop?
    private var thread = pthread_t()

    init(backend: PollBackend) { self.backend = backend }

    func start() throws -> UInt16 {
        var configuration = LoopKit.EventLoop.Configuration()
        configuration.backend = backend
        let loop = try LoopKit.EventLoop(configuration: configuration)
        try loop.start()
        self.loop = loop
        let listener = try TCPListener(port: 0, backlog: 1024, on: loop)
        let started = Atomic<UInt>(0)
        try loop.submit {
            listener.accept { result in if case .success(let connection) = result { Self.echo(connection) } }
            started.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .releasing)
        }
        spin { started.load(ordering: .acquiring) != 0 }
        thread = pthread_t(started.load(ordering: .acquiring))
        return listener.port
    }

    private static func echo(_ connection: TCPConnection) {
        connection.read { result in
            guard case .success(let chunk?) = result else { return connection.close() }
            connection.write(chunk) { if case .success = $0 { echo(connection) } else { connection.close() } }
        }
    }

    func cpuNanoseconds() -> Int64? { threadCPUNanoseconds(thread) }

    func stop() { loop?.shutdown() } // closes the listener and every connection
}

/// SwiftNIO: a one-thread `MultiThreadedEventLoopGroup`, `ServerBootstrap`, a handler that writes every read
/// back and flushes at the end of each read burst.
final class NIOEchoServer: EchoServer, @unchecked Sendable { // start/stop from the controlling thread
    private var group: MultiThreadedEventLoopGroup?
    private var channel: (any Channel)?
    private var thread = pthread_t()

    final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
        func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    }

    func start() throws -> UInt16 {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        self.channel = channel
        let raw = try group.next().submit { UInt(bitPattern: Int(bitPattern: pthread_self())) }.wait()
        thread = pthread_t(raw)
        return UInt16(channel.localAddress!.port!)
    }

    func cpuNanoseconds() -> Int64? { threadCPUNanoseconds(thread) }

    func stop() {
        try? channel?.close().wait()
        try? group?.syncShutdownGracefully()
    }
}

/// SwiftNIO's async form: `ServerBootstrap.bind` into `NIOAsyncChannel`s on a one-thread group; a task
/// iterates the accepted connections and runs, per connection, a child task that writes back every buffer
/// its inbound stream yields (the child tasks run on the global executor).
final class NIOAsyncEchoServer: EchoServer, @unchecked Sendable { // start/stop from the controlling thread
    private var group: MultiThreadedEventLoopGroup?
    private var task: Task<Void, Never>?
    private let ready = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var port: Int? // written by the server task before `ready` is signalled
    private var failure: (any Error)?

    func start() throws -> UInt16 {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        task = Task { [self] in
            defer { finished.signal() }
            do {
                let server = try await ServerBootstrap(group: group)
                    .serverChannelOption(ChannelOptions.backlog, value: 1024)
                    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                    .bind(host: "127.0.0.1", port: 0) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
                port = server.channel.localAddress?.port
                ready.signal()
                try await server.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { connections in
                        for try await connection in inbound {
                            connections.addTask {
                                try? await connection.executeThenClose { input, output in
                                    for try await buffer in input { try await output.write(buffer) }
                                }
                            }
                        }
                    }
                }
            } catch {
                if port == nil {
                    failure = error
                    ready.signal()
                }
            }
        }
        ready.wait()
        if let failure { throw failure }
        return UInt16(port!)
    }

    func cpuNanoseconds() -> Int64? { nil }

    func stop() {
        task?.cancel() // ends the accept loop and, with it, the server task
        finished.wait() // before the group goes: the task's last steps still run on its loop
        try? group?.syncShutdownGracefully() // closes what is left
    }
}

/// libuv: a loop on a thread of its own, `uv_tcp` listener and clients, `uv_read_start` into a malloc'd
/// 64 KiB buffer per read, `uv_write` of the bytes read (the buffer freed when the write completes).
final class LibUVEchoServer: EchoServer, @unchecked Sendable { // start/stop from the controlling thread
    private let loop = UnsafeMutablePointer<uv_loop_t>.allocate(capacity: 1)
    private let server = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
    private let wakeup = UnsafeMutablePointer<uv_async_t>.allocate(capacity: 1)
    private var runner: JoinableThread?

    deinit {
        wakeup.deallocate()
        server.deallocate()
        loop.deallocate()
    }

    func start() throws -> UInt16 {
        let rc = uv_loop_init(loop)
        guard rc == 0 else { throw PeerError.libuv(rc) }
        uv_tcp_init(loop, server)
        var address = sockaddr_in()
        uv_ip4_addr("127.0.0.1", 0, &address)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_bind(server, $0, 0) }
        }
        guard bound == 0 else { throw PeerError.libuv(bound) }
        let listening = server.withMemoryRebound(to: uv_stream_t.self, capacity: 1) { stream in
            uv_listen(stream, 1024) { server, status in
                guard status == 0, let server else { return }
                let client = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
                uv_tcp_init(server.pointee.loop, client)
                client.withMemoryRebound(to: uv_stream_t.self, capacity: 1) { stream in
                    guard uv_accept(server, stream) == 0 else {
                        uv_close(UnsafeMutableRawPointer(stream).assumingMemoryBound(to: uv_handle_t.self)) { $0?.deallocate() }
                        return
                    }
                    uv_tcp_nodelay(client, 1)
                    client.pointee.data = UnsafeMutableRawPointer(bitPattern: 1) // a client: the stop walk frees it
                    uv_read_start(stream, { _, _, buffer in
                        buffer!.pointee = uv_buf_init(malloc(65536)!.assumingMemoryBound(to: CChar.self), 65536)
                    }, { stream, count, buffer in
                        guard count > 0 else {
                            free(buffer?.pointee.base)
                            if count < 0 {
                                uv_close(UnsafeMutableRawPointer(stream!).assumingMemoryBound(to: uv_handle_t.self)) { handle in
                                    UnsafeMutableRawPointer(handle!).assumingMemoryBound(to: uv_tcp_t.self).deallocate()
                                }
                            }
                            return
                        }
                        let request = UnsafeMutablePointer<uv_write_t>.allocate(capacity: 1)
                        request.pointee.data = UnsafeMutableRawPointer(buffer!.pointee.base)
                        var out = uv_buf_init(buffer!.pointee.base, UInt32(count))
                        uv_write(request, stream, &out, 1) { request, _ in
                            free(request!.pointee.data)
                            request!.deallocate()
                        }
                    })
                }
            }
        }
        guard listening == 0 else { throw PeerError.libuv(listening) }
        var name = sockaddr_in()
        var length = Int32(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &name) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getsockname(server, $0, &length) }
        }
        // Stopping: close every handle (the clients' close callbacks free them), so uv_run returns.
        uv_async_init(loop, wakeup) { handle in
            uv_walk(handle!.pointee.loop, { handle, _ in
                guard let handle, uv_is_closing(handle) == 0 else { return }
                if handle.pointee.type == UV_TCP && handle.pointee.data != nil {
                    uv_close(handle) { UnsafeMutableRawPointer($0!).assumingMemoryBound(to: uv_tcp_t.self).deallocate() }
                } else {
                    uv_close(handle, nil)
                }
            }, nil)
        }
        server.pointee.data = nil // the listener is not freed by the walk; clients are marked when accepted
        runner = try JoinableThread { [self] in uv_run(loop, UV_RUN_DEFAULT) } // keeps self alive while it runs
        return UInt16(bigEndian: name.sin_port)
    }

    func cpuNanoseconds() -> Int64? { runner.map { threadCPUNanoseconds(pthread_t($0.pthreadHandle)) } }

    func stop() {
        uv_async_send(wakeup)
        runner?.join()
        runner = nil
        uv_loop_close(loop)
    }
}
