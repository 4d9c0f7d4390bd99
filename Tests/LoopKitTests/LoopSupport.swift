import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// A manual monotonic clock for timer tests: time moves only when the test says so. It starts at `start`
/// nanoseconds, which may be negative (`MonotonicClock` fixes no origin).
final class ManualClock: MonotonicClock, @unchecked Sendable {
    private let now: Atomic<Int64>
    init(start: Int64 = 1_000_000_000) { now = Atomic(start) }
    func nanoseconds() -> Int64 { now.load(ordering: .acquiring) }
    func advance(by d: Duration) {
        let (s, a) = d.components
        advance(nanoseconds: s * 1_000_000_000 + a / 1_000_000_000)
    }
    func advance(nanoseconds: Int64) { now.add(nanoseconds, ordering: .releasing) }
}

/// A counter any thread may bump and read.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// An append-only log of values, for checking the order tasks ran in.
final class OrderLog<T: Sendable>: Sendable {
    private let values = Locked<[T]>([])
    func append(_ v: T) { values.withLock { $0.append(v) } }
    var snapshot: [T] { values.withLock { $0 } }
    var count: Int { values.withLock { $0.count } }
}

extension EventLoop.Configuration {
    static func testing(backend: PollBackend = .auto, idle: IdleStrategy = .park,
                        ingress: IngressKind = .perProducer) -> Self {
        var c = Self()
        c.backend = backend
        c.idleStrategy = idle
        c.ingress = ingress
        return c
    }
}

/// Every backend that works here (io_uring only where a ring can be set up), probed once.
enum LoopBackends {
    static let available: [PollBackend] = [.epoll, .ioUring].filter(\.isAvailable)
}

/// Starts a loop on its own thread; the caller shuts it down.
func startedLoop(_ configuration: EventLoop.Configuration = .testing()) throws -> EventLoop {
    let loop = try EventLoop(configuration: configuration)
    try loop.start()
    return loop
}

/// Blocks the loop inside a task until the returned function is called, and returns once the loop is held:
/// everything submitted meanwhile is queued behind that task and taken together in the next batch.
///
/// The hold outlasts every bounded wait a test makes while it holds the loop (`heldLoopLimitSeconds`), so
/// that such a wait fails with its own message; it still ends by itself then, so that a test that throws
/// before releasing cannot leave the loop held. A hold that ended before its release is an issue of the
/// test that releases it: what the test saw after that was no longer a held loop.
func holdLoop(_ loop: EventLoop) throws -> @Sendable () -> Void {
    let hold = Atomic<Bool>(true)
    let holding = Atomic<Bool>(false)
    let expired = Atomic<Bool>(false)
    try loop.submit {
        holding.store(true, ordering: .releasing)
        if !waitUntil(seconds: heldLoopLimitSeconds, { !hold.load(ordering: .acquiring) }) {
            expired.store(true, ordering: .releasing)
        }
    }
    precondition(waitUntil { holding.load(ordering: .acquiring) }, "the loop never ran the holding task")
    return {
        hold.store(false, ordering: .releasing)
        if expired.load(ordering: .acquiring) {
            Issue.record("the loop's hold ended by itself after \(heldLoopLimitSeconds) s, before the test released it")
        }
    }
}

/// Wakes the loop and waits until a full tick has started after the call.
func nudge(_ loop: EventLoop) async throws {
    try await loop.perform {}
    try await loop.perform {}
}

/// The three ways to queue a task.
enum SubmitLane: CaseIterable, Sendable, CustomStringConvertible {
    case external, `internal`, microtask

    func submit(to loop: EventLoop, _ task: @escaping @Sendable () -> Void) throws {
        switch self {
        case .external: try loop.submit(task)
        case .internal: try loop.submitInternal(task)
        case .microtask: try loop.queueMicrotask(task)
        }
    }

    var description: String {
        switch self {
        case .external: return "submit"
        case .internal: return "submitInternal"
        case .microtask: return "queueMicrotask"
        }
    }
}

/// Runs `action` when released (to observe where, and when, the loop releases a closure).
final class DeinitAction: Sendable {
    private let action: @Sendable () -> Void
    init(_ action: @escaping @Sendable () -> Void) { self.action = action }
    deinit { action() }
}

/// How many times each of `count` tasks ran.
final class RunLedger: @unchecked Sendable {
    private let counts: UnsafeMutablePointer<Atomic<UInt8>>
    let count: Int
    init(count: Int) {
        self.count = count
        counts = .allocate(capacity: count)
        for i in 0..<count { (counts + i).initialize(to: Atomic(0)) }
    }
    deinit {
        counts.deinitialize(count: count)
        counts.deallocate()
    }
    func ran(_ i: Int) { counts[i].add(1, ordering: .relaxed) }
    func runs(_ i: Int) -> Int { Int(counts[i].load(ordering: .relaxed)) }
    var total: Int { (0..<count).reduce(0) { $0 + runs($1) } }
}

/// `perform` for a synchronous test: submits and waits for the result.
func performBlocking<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> T) throws -> T? {
    let result = Locked<T?>(nil)
    try loop.submit { let value = body(); result.withLock { $0 = value } }
    _ = waitUntil(seconds: 10) { result.withLock { $0 } != nil }
    return result.withLock { $0 }
}

/// The loop still runs tasks, timers and fd handlers: a `perform` round trip, a zero-delay timer, and a
/// pipe's readiness reaching a fresh registration.
func expectStillServes(_ loop: EventLoop, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let answer = try await loop.perform { 6 * 7 }
    #expect(answer == 42, sourceLocation: sourceLocation)
    let fired = Counter()
    try loop.scheduleTimer(after: .zero) { fired.increment() }
    #expect(await awaitCondition(seconds: 10) { fired.count == 1 }, "a timer", sourceLocation: sourceLocation)
    let pipe = try IOFixture.pipe()
    defer { IOFixture.close(pipe) }
    let ready = Counter()
    try await loop.perform {
        try loop.register(fd: pipe.read, events: .read) { _ in
            ready.increment()
            IOFixture.drain(pipe.read)
        }
    }
    IOFixture.writeByte(pipe.write)
    #expect(await awaitCondition(seconds: 10) { ready.count >= 1 }, "an fd handler", sourceLocation: sourceLocation)
    try await loop.perform { try loop.unregister(fd: pipe.read) }
}

extension EventLoop {
    /// The blocking graceful shutdown, for `defer` cleanup in async tests (a `defer` body cannot await). The
    /// library marks the blocking form unavailable from async code, where it would block a cooperative
    /// thread; a test's cleanup accepts that.
    func shutdownForCleanup() { shutdown() }
}
