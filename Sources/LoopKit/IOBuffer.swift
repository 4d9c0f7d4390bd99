/// Bytes received from a socket, in one of the loop's receive buffers (`Configuration.readBufferCount` of
/// `readBufferSize` bytes): what the kernel wrote, not a copy. Releasing the `IOBuffer` (its last reference
/// going away) gives the buffer back to the loop, so a reader that holds buffers holds back the receives
/// of every connection on the loop once all are lent; hold them only as long as needed.
///
/// Threading: immutable and usable from any thread. The release happens on the loop thread (from another
/// thread it is submitted there); after the loop has terminated the memory stays valid until the last
/// `IOBuffer` goes.
public final class IOBuffer: @unchecked Sendable { // immutable; the bytes are not written while it exists
    private let loop: EventLoop
    private let pool: BufferPool
    private let id: UInt32
    private let base: UnsafeRawPointer

    /// The number of bytes.
    public let count: Int

    init(loop: EventLoop, pool: BufferPool, id: UInt32, count: Int) {
        self.loop = loop
        self.pool = pool
        self.id = id
        self.count = count
        base = UnsafeRawPointer(pool.memory + Int(id) * pool.size)
    }

    deinit {
        let (loop, id, pool) = (loop, id, pool)
        if loop.inEventLoop {
            loop.releaseBuffer(id, of: pool)
        } else {
            _ = try? loop.submit { loop.releaseBuffer(id, of: pool) } // a terminated loop has no pool to refill
        }
    }

    /// Calls `body` with the bytes; the pointer must not escape it.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// A copy of the bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
