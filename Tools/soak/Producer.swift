import Glibc
import LoopKit
import Synchronization

/// One producer thread: submits its `quota` tasks, in sequence order, to whichever loop is current. A task
/// refused with `.terminated` (its loop's shutdown closed the gate) is retried first thing on the next
/// loop, so across the soak every task is accepted exactly once and the sequence stays in order. A task
/// refused with `.outOfMemory` (SOAK_FAULTS=on: an allocation failed, nothing was queued) is retried on the
/// same loop after a pause; any other refusal is counted, typed or not, and FAILs the run.
///
/// It keeps at most `window` tasks accepted but not yet run, counting runs from the loop's published
/// per-producer count. After the controller began a loop's shutdown it keeps submitting (racing the
/// shutdown) until refused; past `overrun` tasks there it slows to one task per ~50 µs. A graceful shutdown
/// drains until every lane is empty, and producers that keep pace with the loop keep it draining (measured:
/// 8 producers on 2 cores, 32 on 16 cores); slowed down, they let the drain finish and close the gate under
/// their submits.
struct Producer: Sendable {
    let index: Int
    let quota: Int
    let options: Options
    let world: World
    let slot: ProducerSlot
    let ran: PaddedCounter

    func run() {
        let fault = options.selfTest.faultSequence(producer: index, quota: quota)
        var seq = 0
        var accepted = 0
        var unrun = 0          // accepted tasks found not run at epoch switches (lost): excluded from the window
        var epoch = 0
        var loop: EventLoop?
        var ingress = IngressKind.perProducer // the current loop's
        var afterShutdown = 0  // tasks accepted by this loop since its shutdown began
        var slowed = false     // this loop's overrun was reached

        while seq < quota {
            guard let current = loop else {
                slot.state.store(ProducerSlot.State.waitingForEpoch.rawValue, ordering: .relaxed)
                guard let next = world.waitForEpoch(after: epoch) else { return } // the soak gave up
                loop = next.loop
                ingress = next.loop.configuration.ingress
                epoch = next.epoch
                slot.epoch.store(epoch, ordering: .relaxed)
                // The previous loop has terminated: every task it accepted has run (acquiring the epoch made
                // its final counts visible). Any difference is a loss; keep it out of the window.
                let difference = accepted - unrun - ran.value.load(ordering: .relaxed)
                if difference != 0 {
                    unrun += difference
                    slot.unrunAtTermination.wrappingAdd(difference, ordering: .relaxed)
                }
                afterShutdown = 0
                slowed = false
                slot.state.store(ProducerSlot.State.submitting.rawValue, ordering: .relaxed)
                continue
            }
            let shuttingDown = world.closing.load(ordering: .relaxed) == epoch
            if shuttingDown && afterShutdown >= options.overrun {
                // Trickle: one task per ~50 µs, so the drain catches up and closes the gate while this
                // producer is still submitting.
                if !slowed { slowed = true; slot.overrunReached.wrappingAdd(1, ordering: .relaxed) }
                usleep(50)
            }
            if accepted - unrun - ran.value.load(ordering: .relaxed) >= options.window {
                waitForWindow(accepted: accepted - unrun, on: current)
                if current.state == .terminated { loop = nil } // a loss keeps the window full: move on
                continue
            }
            if seq == fault && options.selfTest == .drop {
                seq += 1; accepted += 1 // counted as accepted, never submitted
                slot.accepted.store(accepted, ordering: .relaxed)
                continue
            }
            let identity = options.selfTest.submittedSequence(seq, fault: fault)
            let kind = TaskMix.kind(producer: index, seq: identity)
            let token = Token.make(producer: index, kind: kind, seq: identity)
            do {
                try submit(token, kind: kind, to: current)
            } catch EventLoopError.terminated {
                slot.rejected.wrappingAdd(1, ordering: .relaxed)
                // Once refused, always refused: a loop that accepted work now would never run it.
                if (try? current.submit({})) != nil { slot.acceptedAfterRefusal.wrappingAdd(1, ordering: .relaxed) }
                loop = nil // retry this task on the next loop
                continue
            } catch EventLoopError.outOfMemory {
                slot.refusedOutOfMemory[RefusalChannel(kind: kind, ingress: ingress).rawValue].value
                    .wrappingAdd(1, ordering: .relaxed)
                var backoff = Backoff()
                backoff.pause()
                continue // nothing was queued: the same task again
            } catch let error as EventLoopError {
                slot.refusedOther.wrappingAdd(1, ordering: .relaxed)
                unexpectedRefusals.note("producer \(index): a submit was refused with \(error) (only .terminated and .outOfMemory may be)")
                var backoff = Backoff()
                backoff.pause()
                continue
            } catch {
                slot.refusedUntyped.wrappingAdd(1, ordering: .relaxed)
                unexpectedRefusals.note("producer \(index): a submit threw an untyped error: \(type(of: error)): \(error)")
                var backoff = Backoff()
                backoff.pause()
                continue
            }
            if seq == fault && options.selfTest == .duplicate {
                try? submit(token, kind: kind, to: current) // the same task again
            }
            seq += 1
            accepted += 1
            slot.accepted.store(accepted, ordering: .relaxed)
            if shuttingDown {
                afterShutdown += 1
                slot.acceptedAfterShutdownBegan.wrappingAdd(1, ordering: .relaxed)
            }
        }
        slot.state.store(ProducerSlot.State.done.rawValue, ordering: .relaxed)
        world.producersDone.wrappingAdd(1, ordering: .releasing)
    }

    @inline(__always)
    private func submit(_ token: UInt64, kind: TaskKind, to loop: EventLoop) throws {
        switch kind {
        case .external, .externalWithChildren: try loop.submit { soakChecker.run(token) }
        case .internal: try loop.submitInternal { soakChecker.run(token) }
        case .microtask: try loop.queueMicrotask { soakChecker.run(token) }
        }
    }

    /// Waits until the loop has run enough of this producer's tasks, or has terminated.
    private func waitForWindow(accepted: Int, on loop: EventLoop) {
        slot.state.store(ProducerSlot.State.windowFull.rawValue, ordering: .relaxed)
        var backoff = Backoff()
        var rounds = 0
        while accepted - ran.value.load(ordering: .relaxed) >= options.window {
            rounds += 1
            if rounds & 7 == 0 && loop.state == .terminated { break }
            backoff.pause()
        }
        slot.state.store(ProducerSlot.State.submitting.rawValue, ordering: .relaxed)
    }
}
