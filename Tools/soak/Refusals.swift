import Glibc
import LoopKit
import Synchronization

/// Where a producer's submit was refused with `.outOfMemory`, and so which allocation point refused it: the
/// external lane's queue depends on the loop's ingress; the internal lane is an MPSC queue; microtasks go
/// to the ring and its overflow.
enum RefusalChannel: Int, CaseIterable {
    case externalPerProducer, externalLockFree, externalChunked, `internal`, microtask

    init(kind: TaskKind, ingress: IngressKind) {
        switch kind {
        case .internal: self = .internal
        case .microtask: self = .microtask
        case .external, .externalWithChildren:
            switch ingress {
            case .perProducer: self = .externalPerProducer
            case .lockFree: self = .externalLockFree
            case .chunked: self = .externalChunked
            }
        }
    }

    var name: String {
        ["external_per_producer", "external_lock_free", "external_chunked", "internal", "microtask"][rawValue]
    }

    /// The allocation points (FaultTable names) whose failure refuses a submit on this channel.
    var points: String {
        ["SEGMENT_ALLOC/PRODUCER_ALLOC", "NODE_ALLOC", "CHUNK_ALLOC", "NODE_ALLOC", "RING_OVERFLOW_ALLOC"][rawValue]
    }
}

/// The first few descriptions of something that should not happen (any thread; a mutex: rare paths only).
final class NoteBook: Sendable {
    private let notes = Mutex<[String]>([])
    static let limit = 20

    func note(_ text: String) {
        let first = notes.withLock { n -> Bool in
            guard n.count < Self.limit else { return false }
            n.append(text)
            return true
        }
        if first { say("loopkit-soak: \(text)") }
    }

    var all: [String] { notes.withLock { $0 } }
}

/// Submits refused with an error other than `.terminated` and `.outOfMemory` (typed or not): each one FAILs.
let unexpectedRefusals = NoteBook()

/// What the loops' error handlers received. Any thread (a producer, the controller or the fault thread for
/// a wake failure; the loop thread for a task's error or a failed poll): atomics.
///
/// A wake failure (`EventLoopError.system(operation: "wake", ...)`) is what an eventfd write failing on every
/// attempt reports; the task it announced stays queued. Under `SOAK_FAULTS=on` EIO and EAGAIN are injected;
/// anything else, and any other error (no soak task throws; an injected EINTR on a poll is retried, never
/// reported), FAILs.
final class LoopErrorLedger: Sendable {
    let wakeEIO = Atomic<Int>(0)
    let wakeEAGAIN = Atomic<Int>(0)
    let wakeOther = Atomic<Int>(0)
    let other = Atomic<Int>(0)
    let notes = NoteBook()

    var wakeFailures: Int {
        wakeEIO.load(ordering: .relaxed) + wakeEAGAIN.load(ordering: .relaxed) + wakeOther.load(ordering: .relaxed)
    }

    /// The body of every loop's `errorHandler`. Does not block (but for the first few notes' mutex).
    func record(_ error: any Error) {
        if let e = error as? EventLoopError, case .system("wake", let code) = e {
            switch code {
            case EIO: wakeEIO.wrappingAdd(1, ordering: .relaxed)
            case EAGAIN: wakeEAGAIN.wrappingAdd(1, ordering: .relaxed)
            default:
                wakeOther.wrappingAdd(1, ordering: .relaxed)
                notes.note("a wakeup failed with an errno the soak does not inject: \(error)")
            }
            return
        }
        other.wrappingAdd(1, ordering: .relaxed)
        notes.note("the loop's error handler got \(error) (a task threw or a poll failed; none should)")
    }
}

let soakLoopErrors = LoopErrorLedger()
