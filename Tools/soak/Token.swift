/// What a task carries: (producer, sequence, kind) packed into one word, so that the closure captures a
/// single integer. Producer `Token.loopThread` marks the tasks the loop thread submits to itself.
///
/// Layout: producer in bits 52...63, kind in bits 48...51, sequence in bits 0...47.
enum Token {
    static let maxProducers = 4_000
    static let loopThread = 4_095

    static func make(producer: Int, kind: TaskKind, seq: Int) -> UInt64 {
        UInt64(producer) << 52 | UInt64(kind.rawValue) << 48 | UInt64(seq)
    }

    @inline(__always) static func producer(_ t: UInt64) -> Int { Int(t >> 52) }
    @inline(__always) static func kind(_ t: UInt64) -> TaskKind { TaskKind(rawValue: Int(t >> 48 & 0xF)) ?? .external }
    @inline(__always) static func seq(_ t: UInt64) -> Int { Int(t & 0xFFFF_FFFF_FFFF) }
}

/// How a task is submitted, and which lane (queue) it travels on. Order is checked per lane.
enum TaskKind: Int, Sendable {
    case external = 0              // submit(_:) from a producer thread
    case `internal` = 1            // submitInternal(_:) from a producer thread
    case microtask = 2             // queueMicrotask(_:) from a producer thread
    case externalWithChildren = 3  // submit(_:) from a producer; on the loop it submits 1...3 children to itself

    /// The lane: 0 external, 1 internal, 2 microtask.
    @inline(__always) var lane: Int { self == .externalWithChildren ? 0 : rawValue }

    static let laneNames = ["external", "internal", "microtask"]
}

/// The deterministic mix of task kinds: about 80 % plain submit, 8 % submits that spawn children on the loop,
/// 6 % submitInternal and 6 % queueMicrotask, scattered by a hash of (producer, sequence).
enum TaskMix {
    @inline(__always) static func hash(_ x: UInt64) -> UInt64 {  // splitmix64's finaliser
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) static func kind(producer: Int, seq: Int) -> TaskKind {
        switch hash(UInt64(producer) << 48 ^ UInt64(seq)) % 100 {
        case 0..<80: return .external
        case 80..<88: return .externalWithChildren
        case 88..<94: return .internal
        default: return .microtask
        }
    }

    /// The children a task with token `t` submits on the loop: how many (1...3), and the lane of child i.
    @inline(__always) static func childCount(_ t: UInt64) -> Int { Int(hash(t) % 3) + 1 }
    @inline(__always) static func childLane(_ t: UInt64, _ i: Int) -> Int { Int((hash(t) >> (8 + 2 * UInt64(i))) % 3) }
}
