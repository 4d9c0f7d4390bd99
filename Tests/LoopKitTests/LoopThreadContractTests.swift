// The loop-thread contract in debug builds: the loop's internals that only its own thread may run assert
// `inEventLoop`, so a misuse stops at the call instead of corrupting the loop-thread state later.

#if DEBUG
@testable import LoopKit
import Testing

@Suite struct LoopThreadContractTests {
    @Test func aTickOffTheLoopThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            loop.tick()
        }
    }

    @Test func drainingALaneOffTheLoopThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            loop.externalLane.drain(on: loop)
        }
    }

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
