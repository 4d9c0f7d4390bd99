internal import CLoopCore
import Synchronization

// The loop's lifecycle, in one place. Two parts, split as SwiftNIO splits `SelectableEventLoop`'s state
// into what other threads may observe and what only the loop thread sees.
//
// Externally visible (any thread):
//   the phase, in the C wake word (lk_wake.h), because producers read it in the wake handshake:
//
//       created ──run()──▶ running ⇄ sleeping ──shutdown()/close()──▶ terminating ──finish()──▶ terminated
//          └───────────────shutdown()/close() (never run)────────────────▲
//
//   and `Lifecycle`, one atomic word of facts that are each set once and never cleared:
//       owned           a thread owns the loop's consumer side: run() claimed it, or shutdown()/close()
//                       claimed a loop that never ran and finishes it on the calling thread
//       closeRequested  close() asked for queued work to be released instead of run
//       timersClosed    the loop's termination cancelled the timers; scheduleTimer refuses from then on
//
// Loop thread only: `LoopPhase`:
//       ticking ──terminating seen──▶ finishing ──final drain over──▶ finished
//   finishing: the inline fast path is off and no fd can be registered; finished: the loop thread's own
//   submissions are refused (nothing would ever run them).
//
// What follows from the machine rather than adding to it:
//   • the admission gate (lk_gate.h) closes during `finishing`: after it, no other thread's submission is
//     accepted, and every one accepted before it is in a queue the final drain empties;
//   • the terminated latch opens right after the phase becomes terminated, for the threads that wait;
//   • `EventLoop.State` is the C phase, read with acquire.
//
// Transitions, who makes them, and what they order:
//   created → running        run(), on the loop thread, after claiming `owned` (CAS, acquiring-and-releasing:
//                            the winner alone consumes and sees what an earlier, failed run() released)
//   running ⇄ sleeping       the loop thread, in the wake handshake (spin/wake.pml)
//   * → terminating          shutdown()/close() from any thread (CAS on the C word, seq_cst); close() sets
//                            `closeRequested` first (releasing), so the loop that sees terminating and
//                            acquires the flag knows to discard
//   terminating → terminated finish(), on the owning thread, after the final drain, the gate, the fds
//
/// The lifecycle facts other threads share with the loop (see the table above): one atomic word, each bit
/// set once.
struct Lifecycle: ~Copyable {
    private static let owned: UInt8 = 1 << 0
    private static let closeRequested: UInt8 = 1 << 1
    private static let timersClosed: UInt8 = 1 << 2

    private let word = Atomic<UInt8>(0)

    /// Claims the consumer side. True for the one caller that set `owned`. Acquiring-and-releasing: the
    /// winner sees everything a thread did before it set a bit, and publishes its own claim.
    func claim() -> Bool {
        let before = word.bitwiseOr(Self.owned, ordering: .acquiringAndReleasing).oldValue
        return before & Self.owned == 0
    }

    /// close() asked for queued work to be released. Releasing: pairs with the loop's acquiring read in
    /// finish(), which comes after it has seen the terminating phase that close() then stores.
    func requestClose() {
        word.bitwiseOr(Self.closeRequested, ordering: .releasing)
    }

    /// Whether close() was requested. `prompt` reads are relaxed (a per-task hint: finish() re-reads
    /// acquiring before it decides whether to drain).
    var isCloseRequested: Bool { word.load(ordering: .acquiring) & Self.closeRequested != 0 }
    var isCloseRequestedPrompt: Bool { word.load(ordering: .relaxed) & Self.closeRequested != 0 }

    /// The timers were cancelled by the loop's termination. Set and read under the timer lock, which orders
    /// it with every scheduleTimer (relaxed: the lock does the ordering).
    func closeTimers() {
        word.bitwiseOr(Self.timersClosed, ordering: .relaxed)
    }

    var areTimersClosed: Bool { word.load(ordering: .relaxed) & Self.timersClosed != 0 }
}

/// The loop thread's own view of its lifecycle (see the table above). Loop thread only.
enum LoopPhase {
    /// Ticking; the inline fast path and fd registration are allowed.
    case ticking
    /// The final drain: tasks still run, the inline fast path is off, no fd can be registered.
    case finishing
    /// The final drain is over: the loop thread's own submissions are refused.
    case finished
}
