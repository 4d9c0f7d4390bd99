// The loop-thread contract in debug builds: the loop's internals that only its own thread may run assert
// `inEventLoop`, so a misuse stops at the call instead of corrupting the loop-thread state later.

#if DEBUG
@testable import LoopKit
import Testing

@Suite struct LoopThreadContractTests {
    /// A tick run off the loop thread stops the process (a debug-build assertion), checked in a child process.
    @Test func aTickOffTheLoopThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            loop.tick()
        }
    }

    /// Draining a lane off the loop thread stops the process (a debug-build assertion), checked in a child process.
    @Test func drainingALaneOffTheLoopThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            loop.externalLane.drain(on: loop)
        }
    }

    /// The final drain (finish) run off the loop thread stops the process (a debug-build assertion), checked in a
    /// child process.
    @Test func finishingOffTheLoopThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            loop.finish()
        }
    }

    /// The same calls on the loop thread are fine: a never-run loop shut down from here is finished on this
    /// thread, which acts as its loop thread for the time.
    @Test func aNeverRunLoopIsFinishedByTheThreadThatShutsItDown() throws {
        let loop = try EventLoop()
        loop.shutdown()
        #expect(loop.state == .terminated)
    }
}
#endif
