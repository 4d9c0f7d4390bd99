import LoopKitConcurrencyHelpers
import Synchronization

/// One counter on its own cache lines: counters that different threads write stay off each other's lines.
final class PaddedCounter: Sendable {
    private let before = CacheLinePadding()
    let value = Atomic<Int>(0)
    private let after = CacheLinePadding()
}
