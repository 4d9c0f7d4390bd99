import ArgumentParser
import Glibc

/// Progress on standard error, written between measurements and never inside one: a live line rewritten in
/// place when standard error is a terminal, plain lines otherwise (one when a workload starts, then at most
/// one every 10 s, for CI logs), or nothing. Standard output stays free of it.
final class Progress {
    enum Mode: String, ExpressibleByArgument, CaseIterable {
        /// `live` on a terminal, `lines` otherwise.
        case auto, live, lines, off
    }

    private let live: Bool
    private let enabled: Bool
    private let total: Int
    private let started = now()
    private var done = 0
    private var lastLine: Int64 = 0
    private var lastWorkload = ""

    init(mode: Mode, total: Int) {
        let terminal = isatty(2) == 1
        live = mode == .live || (mode == .auto && terminal)
        enabled = mode != .off
        self.total = total
    }

    /// Call before each measurement (outside its timed region).
    func begin(workload: String, params: String, entrant: String, run: Int, runs: Int) {
        defer { done += 1 }
        guard enabled else { return }
        let elapsed = now() - started
        let remaining = done == 0 ? "?" : Self.duration(elapsed / Int64(done) * Int64(total - done))
        let what = params.isEmpty ? workload : "\(workload) \(params)"
        let text = "[\(done + 1)/\(total)] \(what) · \(entrant) · run \(run + 1)/\(runs) · "
            + "\(Self.duration(elapsed)) elapsed · ~\(remaining) left"
        if live {
            emit("\r\u{1b}[K" + String(text.prefix(Self.columns() - 1)))
        } else if workload != lastWorkload || elapsed - lastLine >= 10_000_000_000 {
            emit(text + "\n")
            lastWorkload = workload
            lastLine = elapsed
        }
    }

    /// The closing line: how many measurements, in how long.
    func finish() {
        guard enabled else { return }
        let text = "loopbench: \(done) measurements in \(Self.duration(now() - started))\n"
        emit(live ? "\r\u{1b}[K" + text : text)
    }

    private func emit(_ text: String) {
        var text = text
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// m:ss (or h:mm:ss) of a nanosecond count.
    static func duration(_ nanoseconds: Int64) -> String {
        let seconds = Int(nanoseconds / 1_000_000_000)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60)
        return h > 0 ? "\(h):\(two(m)):\(two(s))" : "\(m):\(two(s))"
    }

    /// The terminal's width (standard error), or 100 when it does not say.
    static func columns() -> Int {
        var size = winsize()
        let rc = withUnsafeMutablePointer(to: &size) { ioctl(2, UInt(TIOCGWINSZ), $0) }
        return rc == 0 && size.ws_col > 20 ? Int(size.ws_col) : 100
    }
}
