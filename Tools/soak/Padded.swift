import Synchronization

/// 128 bytes of nothing: keeps counters that different threads write off each other's cache lines.
struct Padding: Sendable {
    private let words: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// One counter on its own cache lines.
final class PaddedCounter: Sendable {
    private let before = Padding()
    let value = Atomic<Int>(0)
    private let after = Padding()
}
