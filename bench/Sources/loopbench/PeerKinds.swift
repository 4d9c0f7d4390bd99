/// The non-LoopKit entrants: the Baseline reference loop and the peers (SwiftNIO, libuv, Dispatch).
/// Each `make` returns a fresh, unstarted entrant.
enum PeerKinds {
    static let all: [EntrantKind] = [
        EntrantKind(name: "Baseline", family: .baseline) { BaselineEntrant() },
        EntrantKind(name: "SwiftNIO", family: .peer) { NIOEntrant() },
        EntrantKind(name: "libuv", family: .peer) { LibUVEntrant() },
        EntrantKind(name: "Dispatch", family: .peer) { DispatchEntrant() },
    ]
}
