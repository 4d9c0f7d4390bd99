import InMemoryLogging
import Logging
import LoopKit
import LoopKitIntegration
import Testing
import TestSupport

/// Loop errors reach a swift-log Logger, with the loop's index as metadata.
@Suite struct LoggingTests {
    struct Boom: Error, CustomStringConvertible {
        let n: Int
        var description: String { "boom \(n)" }
    }

    /// With logErrors, each loop of a group logs the errors its tasks throw, with the given metadata and the loop's
    /// index.
    @Test func aGroupsLoopsLogTheirErrorsWithTheirIndex() async throws {
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "loops") { _ in handler }
        var configuration = EventLoopGroup.Configuration(loopCount: 3)
        configuration.loop.idleStrategy = .park
        configuration.logErrors(to: logger, metadata: ["service": "test"])
        let group = try EventLoopGroup(configuration: configuration)
        for (index, loop) in group.enumerated() {
            try loop.submit { throw Boom(n: index) }
        }
        #expect(await awaitCondition { handler.entries.count == 3 })
        for entry in handler.entries {
            #expect(entry.level == .error)
            let index = Int("\(entry.metadata[EventLoopGroup.loopIndexMetadataKey] ?? "")")
            #expect(index != nil)
            #expect(entry.message.description == "event loop error: boom \(index ?? -1)", "the entry names its own loop")
            #expect((entry.error as? Boom)?.n == index)
            #expect(entry.metadata["service"] == "test")
        }
        await group.shutdown()
    }

    /// logErrors keeps an earlier configureLoop in force and logs at the level given, with the loop's index.
    @Test func logErrorsComposesWithAnEarlierConfigureLoop() async throws {
        let handler = InMemoryLogHandler()
        var configuration = EventLoopGroup.Configuration(loopCount: 2)
        configuration.configureLoop = { index, loop in loop.externalBatchBudget = 10 + index }
        configuration.logErrors(to: Logger(label: "loops") { _ in handler }, level: .warning)
        let group = try EventLoopGroup(configuration: configuration)
        #expect(group.map(\.configuration.externalBatchBudget) == [10, 11])
        try group[1].scheduleTimer(after: .zero) { throw Boom(n: 7) }
        #expect(await awaitCondition { handler.entries.count == 1 })
        #expect(handler.entries.first?.level == .warning)
        #expect(handler.entries.first?.metadata[EventLoopGroup.loopIndexMetadataKey] == "1")
        await group.shutdown()
    }

    /// A single loop configured with logErrors logs its tasks' errors with exactly the metadata given.
    @Test func aSingleLoopLogsWithTheGivenMetadata() async throws {
        let handler = InMemoryLogHandler()
        var configuration = EventLoop.Configuration()
        configuration.logErrors(to: Logger(label: "loop") { _ in handler }, metadata: ["loop": "io"])
        let loop = try EventLoop(configuration: configuration)
        try loop.start()
        try loop.submitInternal { throw Boom(n: 1) }
        #expect(await awaitCondition { handler.entries.count == 1 })
        #expect(handler.entries.first?.metadata == ["loop": "io"])
        await loop.shutdown()
    }
}
