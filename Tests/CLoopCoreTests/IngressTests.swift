// Tests for lk_ingress (lk_ingress.h): one interface over lk_mpsc and lk_chunkq, run against both kinds.

import CLoopCore
import Glibc
import Testing

extension lk_ingress_kind: @retroactive CustomTestStringConvertible {
    public var testDescription: String {
        switch self {
        case LK_INGRESS_LOCK_FREE: "LK_INGRESS_LOCK_FREE"
        case LK_INGRESS_CHUNKED: "LK_INGRESS_CHUNKED"
        default: "lk_ingress_kind(\(rawValue))"
        }
    }
}

private let ingressKinds = [LK_INGRESS_LOCK_FREE, LK_INGRESS_CHUNKED]

private func makeIngress(_ kind: lk_ingress_kind,
                         sourceLocation: SourceLocation = #_sourceLocation) throws -> OpaquePointer {
    var q: OpaquePointer?
    try #require(lk_ingress_create(&q, kind) == 0, "create \(kind.testDescription)", sourceLocation: sourceLocation)
    return try #require(q, sourceLocation: sourceLocation)
}

@discardableResult
private func push(_ q: OpaquePointer, _ range: Range<Int>) -> [Int32] {
    pushSequences(range) { lk_ingress_push(q, $0) }
}

private func drain(_ q: OpaquePointer, limit: Int = 1_000_000,
                   sourceLocation: SourceLocation = #_sourceLocation) -> [Int] {
    drainSequences(limit: limit, sourceLocation: sourceLocation) { lk_ingress_pop(q, $0) }
}

@Suite struct IngressTests {
    @Test(arguments: ingressKinds)
    func createReportsKind(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        #expect(lk_ingress_get_kind(q) == kind)
        #expect(lk_ingress_is_empty(q))
        var out = blankTask
        #expect(lk_ingress_pop(q, &out) == LK_POP_EMPTY)
    }

    @Test func unknownKindIsRejected() {
        for raw: UInt32 in [2, 7, UInt32.max] {
            var q: OpaquePointer?
            #expect(lk_ingress_create(&q, lk_ingress_kind(rawValue: raw)) == negErrno(EINVAL), "kind \(raw)")
            #expect(q == nil, "kind \(raw): no queue returned")
            if let q { lk_ingress_destroy(q) }
        }
    }

    @Test(arguments: ingressKinds)
    func fifoAndWasEmpty(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        for round in 0..<2 {
            let results = push(q, 0..<500)
            #expect(results.first == 1, "round \(round): first push onto an empty queue")
            #expect(results.dropFirst().allSatisfy { $0 == 0 }, "round \(round)")
            #expect(!lk_ingress_is_empty(q))
            #expect(drain(q) == Array(0..<500))
            #expect(lk_ingress_is_empty(q))
        }
        push(q, 0..<2)
        var out = blankTask
        #expect(lk_ingress_pop(q, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 0)
        var t = makeTask(2)
        #expect(lk_ingress_push(q, &t) == 0, "one task still queued")
        #expect(drain(q) == [1, 2])
        #expect(lk_ingress_push(q, &t) == 1, "drained")
        #expect(drain(q) == [2])
    }

    @Test(arguments: ingressKinds)
    func popBatch(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        push(q, 0..<300)
        var batch = [lk_task](repeating: blankTask, count: 129)
        var next = 0
        for expected in [128, 128, 44, 0] {
            var busy = true
            let n = batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 128, &busy) }
            #expect(n == expected)
            #expect(!busy)
            #expect(batch[128].words == blankTask.words, "pop_batch wrote past max")
            #expect((0..<min(n, 128)).map { sequenceOf(batch[$0]) } == Array(next..<next + expected))
            next += expected
        }
        #expect(lk_ingress_is_empty(q))
        push(q, 0..<3)
        #expect(batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 128, nil) } == 3)
        #expect(lk_ingress_is_empty(q))
    }

    @Test("P = 4 producers, one consumer: per-producer FIFO, exact totals", arguments: ingressKinds)
    func concurrentProducersOneConsumer(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        let shared = SharedHandle(q)
        var useBatch = false
        var batch = [lk_task](repeating: blankTask, count: 64)
        let checker = runProducersWithConsumer(
            producers: 4, perProducer: 20_000,
            push: { lk_ingress_push(shared.pointer, $0) },
            drain: { checker in
                useBatch.toggle()
                if useBatch {
                    var busy = false
                    let n = batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 64, &busy) }
                    for i in 0..<n { checker.accept(batch[i]) }
                    return n
                }
                var out = blankTask
                guard lk_ingress_pop(q, &out) == LK_POP_OK else { return 0 }
                checker.accept(out)
                return 1
            })
        checker.verify()
        var out = blankTask
        #expect(lk_ingress_pop(q, &out) == LK_POP_EMPTY)
        #expect(lk_ingress_is_empty(q))
    }
}
