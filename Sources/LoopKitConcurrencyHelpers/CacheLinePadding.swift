/// 128 bytes of nothing, to keep fields that different threads write on different cache lines (false
/// sharing): two 64-byte lines, because adjacent-line prefetch fetches lines in pairs. Swift lays out a
/// class's stored properties in declaration order, so a padding between two fields separates them.
public struct CacheLinePadding: Sendable {
    private let words: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    public init() {}
}
