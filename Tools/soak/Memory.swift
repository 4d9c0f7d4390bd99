import Glibc

/// Resident memory: sampled after every epoch; "stable" compares the last quarter of epochs with the first.
enum Memory {
    static let mebibyte = 1_048_576.0
    /// The last quarter's highest sample may exceed the first quarter's highest by this factor plus `slackBytes`.
    static let slackFactor = 1.10
    static let slackBytes = 8 * 1_048_576
    /// Fewer epochs than this and the check is skipped (reported, not failed): quarters would be one or two samples.
    static let minimumEpochs = 8

    /// Current RSS: /proc/self/statm's resident pages times the page size.
    static func residentBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return 0 }
        let fields = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }

    /// The process's peak RSS (getrusage ru_maxrss, KiB on Linux).
    static func maxResidentBytes() -> Int {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }

    /// Pins glibc malloc's trim and mmap thresholds at their initial 128 KiB (mallopt; looked up at run time).
    ///
    /// By default glibc raises both thresholds each time a large block (here: a loop's queues and pools,
    /// freed when the loop is) is freed, after which every per-thread arena keeps its own high-water mark
    /// resident: RSS then climbs for 100+ loops and levels off (measured: 28 -> 53 MiB over the default run
    /// with a heap in use that stays at 5-9 MiB). Pinned, free memory goes back to the kernel and RSS
    /// follows the live heap, so that growth means something was kept. `SOAK_MALLOC=default` skips this.
    static func pinMallocThresholds() -> Bool {
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false } // RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3 // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (malloc.h)
        return mallopt(trimThreshold, 128 * 1024) == 1 && mallopt(mmapThreshold, 128 * 1024) == 1
    }

    struct Verdict {
        let firstQuarterMax: Int
        let lastQuarterMax: Int
        let limit: Int
        /// nil when there were too few epochs to judge.
        let stable: Bool?
    }

    static func verdict(samples: [Int]) -> Verdict {
        guard samples.count >= minimumEpochs else {
            let m = samples.max() ?? 0
            return Verdict(firstQuarterMax: m, lastQuarterMax: m, limit: 0, stable: nil)
        }
        let q = samples.count / 4
        let first = samples[..<q].max()!, last = samples[(samples.count - q)...].max()!
        let limit = Int(Double(first) * slackFactor) + slackBytes
        return Verdict(firstQuarterMax: first, lastQuarterMax: last, limit: limit, stable: last <= limit)
    }

    static func mib(_ bytes: Int) -> String { String(format1: Double(bytes) / mebibyte) }
}
