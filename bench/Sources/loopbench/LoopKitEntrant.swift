import LoopKit

/// LoopKit through its public Swift API, in one of its configurations.
final class LoopKitEntrant: Entrant, @unchecked Sendable {
    let name: String
    private let loop: EventLoop // a let: reading it needs no retain, so submit leaves the loop's header alone

    init(name: String, configuration: EventLoop.Configuration) {
        self.name = name
        do { loop = try EventLoop(configuration: configuration) } catch { fatalError("EventLoop(): \(error)") }
    }

    func start() throws { try loop.start() }

    @inline(__always) func submit(_ task: @escaping @Sendable () -> Void) {
        do { try loop.submit(task) } catch { fatalError("LoopKit rejected a task while running: \(error)") }
    }

    /// Submits to the internal (priority) lane: the BatchBudget probe.
    func submitInternal(_ task: @escaping @Sendable () -> Void) {
        do { try loop.submitInternal(task) } catch { fatalError("LoopKit rejected a task while running: \(error)") }
    }

    func shutdown() { loop.shutdown() }

    var wakeSyscalls: UInt64? { loop.wakeStatistics.syscalls }

    /// The name `kinds` gives the configuration `EventLoop.Configuration()` uses here (`.auto` resolved to
    /// io_uring when it is available).
    static func defaultName(backends: [PollBackend]) -> String {
        let c = EventLoop.Configuration()
        let backend: PollBackend = c.backend == .auto ? (backends.contains(.ioUring) ? .ioUring : .epoll) : c.backend
        return name(ingress: c.ingress, backend: backend, idle: c.idleStrategy)
    }

    static func name(ingress: IngressKind, backend: PollBackend, idle: IdleStrategy) -> String {
        "LoopKit \(ingress)/\(backend)/\(idle == .park ? "park" : "spin")"
    }

    /// Every meaningful configuration: ingress × backend × idle strategy.
    static func kinds(backends: [PollBackend]) -> [EntrantKind] {
        var kinds: [EntrantKind] = []
        for ingress in IngressKind.allCases {
            for backend in backends {
                for idle in [IdleStrategy.default, .park] {
                    var c = EventLoop.Configuration()
                    c.ingress = ingress
                    c.backend = backend
                    c.idleStrategy = idle
                    let configuration = c
                    let name = Self.name(ingress: ingress, backend: backend, idle: idle)
                    kinds.append(EntrantKind(name: name, family: .loopkit) { LoopKitEntrant(name: name, configuration: configuration) })
                }
            }
        }
        return kinds
    }

    /// The default configuration with a given external batch budget (BatchBudget; the budget is the
    /// workload's parameter, not part of the entrant's name).
    static func budgetKind(_ budget: Int) -> EntrantKind {
        var c = EventLoop.Configuration()
        c.externalBatchBudget = budget
        let configuration = c
        let name = Self.name(ingress: c.ingress, backend: c.backend, idle: c.idleStrategy)
        return EntrantKind(name: name, family: .loopkit) { LoopKitEntrant(name: name, configuration: configuration) }
    }
}
