internal import CLoopCore
import Glibc

extension EventLoopGroup {
    /// The CPUs the calling thread may run on, ascending: its affinity mask (`sched_getaffinity`), which
    /// reflects `taskset`, cgroup cpusets and any earlier pinning. A new thread inherits its creator's mask,
    /// so on a program's main thread this is the set of CPUs the process may use. Any thread.
    ///
    /// Never empty: should the mask be unreadable, it is every online CPU (`sysconf(_SC_NPROCESSORS_ONLN)`).
    public static func allowedCPUs() -> [Int] {
        CPUAffinity.allowedCPUs() ?? Array(0..<Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    }
}

/// The calling thread's CPU affinity, through masks of any size (lk_affinity.h): glibc's `cpu_set_t` holds
/// 1,024 CPUs, and a kernel built for more refuses a smaller mask than its own.
enum CPUAffinity {
    /// The calling thread's allowed CPUs, ascending; nil when the kernel refuses every mask size tried.
    static func allowedCPUs() -> [Int]? {
        var wordCount = Self.cpuSetWords
        while wordCount <= Self.maximumMaskWords {
            let (cpus, rc): ([Int]?, Int32) = withMask(words: wordCount) { mask in
                let rc = lk_affinity_get(mask.baseAddress, mask.count)
                guard rc == 0 else { return (nil, rc) }
                var cpus: [Int] = []
                for (index, word) in mask.enumerated() where word != 0 {
                    for bit in 0..<UInt.bitWidth where word & (1 << bit) != 0 { cpus.append(index * UInt.bitWidth + bit) }
                }
                return (cpus, 0)
            }
            if let cpus { return cpus }
            guard rc == -EINVAL else { return nil }
            wordCount *= 2 // the kernel's mask is larger than this one
        }
        return nil
    }

    /// Restricts the calling thread to `cpu`. Returns 0, or the errno the kernel refused it with (EINVAL
    /// when the CPU does not exist, is offline or is outside the process's cpuset).
    static func pinCurrentThread(toCPU cpu: Int) -> Int32 {
        precondition(cpu >= 0, "CPUAffinity.pinCurrentThread: negative CPU number \(cpu)")
        // Large enough for `cpu`, and never smaller than glibc's cpu_set_t. A CPU beyond the kernel's own
        // mask size is ignored by the kernel, which then finds no allowed CPU and fails with EINVAL.
        let wordCount = Swift.max(Self.cpuSetWords, cpu / UInt.bitWidth + 1)
        guard wordCount <= Self.maximumMaskWords else { return EINVAL }
        return withMask(words: wordCount) { mask in
            mask[cpu / UInt.bitWidth] = 1 << UInt(cpu % UInt.bitWidth)
            return -lk_affinity_set(mask.baseAddress, mask.count)
        }
    }

    /// Calls `body` with a zeroed mask of `words` words.
    private static func withMask<Result>(words: Int, _ body: (UnsafeMutableBufferPointer<UInt>) -> Result) -> Result {
        let mask = UnsafeMutableBufferPointer<UInt>.allocate(capacity: words)
        defer { mask.deallocate() }
        mask.initialize(repeating: 0)
        return body(mask)
    }

    /// Words in glibc's fixed-size cpu_set_t (1,024 CPUs).
    static let cpuSetWords = 1024 / UInt.bitWidth

    /// 2^20 CPUs: far above any kernel's NR_CPUS, so a larger request is a mistake, not a machine.
    static let maximumMaskWords = (1 << 20) / UInt.bitWidth
}
