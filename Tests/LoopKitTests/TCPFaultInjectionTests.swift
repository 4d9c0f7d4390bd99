import CLoopCore
import CLoopCore.FaultInjection
import Glibc
import LoopKit
import Testing
import TestSupport

/// Receives that find no buffer, injected (LK_FAULT_IO_NOBUFS: as when io_uring's buffer ring runs dry and
/// the kernel answers -ENOBUFS): each such receive waits and is re-armed, and the echo loses nothing.
@Suite(.serialized, .enabled(if: faultTestsEnabled, "fault injection is process-global: make test runs it alone"))
final class TCPFaultInjectionTests {
    init() { lk_fault_disarm_all() }
    deinit { lk_fault_disarm_all() }

    @Test(arguments: IOVariant.available)
    func injectedNoBuffersLosesNothing(variant: IOVariant) async throws {
        let loop = try startedLoop(variant.configuration())
        defer { loop.shutdownForCleanup() }
        let server = try await CallbackEcho(loop: loop)
        let before = lk_fault_injected(LK_FAULT_IO_NOBUFS)
        // The next 200 attempts to receive find no buffer.
        lk_fault_arm(LK_FAULT_IO_NOBUFS, ENOBUFS, 0, 200)
        let failures = await server.roundTrips(clients: 4, seed: 200, size: 128 * 1024)
        lk_fault_disarm(LK_FAULT_IO_NOBUFS)
        #expect(failures == [])
        #expect(lk_fault_injected(LK_FAULT_IO_NOBUFS) > before, "the fault struck")
        #expect(await awaitCondition(seconds: 10) { server.openCount.load(ordering: .acquiring) == 0 })
        #expect(try await loop.perform { (server.failures, loop.receiveBuffersInUse) } == ([], 0))
    }
}
