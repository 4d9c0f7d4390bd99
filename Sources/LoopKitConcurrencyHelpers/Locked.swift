import Glibc

/// A value guarded by a pthread mutex.
///
/// Not `Synchronization.Mutex`: on Linux that locks with a futex inside the standard library, which
/// ThreadSanitizer does not instrument, so TSan would report every access it guards as a race. pthread
/// mutexes are intercepted by TSan, and uncontended they cost the same.
///
/// Threading: any thread. `withLock` must not be re-entered on the same value from inside its body (the
/// mutex is not recursive: the thread would deadlock).
public final class Locked<Value>: @unchecked Sendable {
    // Heap-allocated: a pthread mutex needs a stable address, which a stored property passed with & is not
    // formally guaranteed to have.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline var value: Value // guarded by mutex

    public init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the mutex, and returns what it returns. Inlinable so that callers
    /// in other modules get it specialised for their `Value` (no generic call on their hot paths).
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
