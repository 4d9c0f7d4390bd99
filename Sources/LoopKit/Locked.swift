import Glibc

/// A value guarded by a pthread mutex.
///
/// LoopKit does not use `Synchronization.Mutex` for this: on Linux it locks with a futex inside the standard
/// library, which ThreadSanitizer does not instrument, so TSan would report every access it guards as a race.
/// pthread mutexes are intercepted by TSan, and uncontended they cost the same.
final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value // guarded by mutex

    init(_ value: Value) {
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

    @inline(__always)
    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
