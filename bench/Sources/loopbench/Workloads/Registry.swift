/// Every tournament workload, in report order. Adding a workload is one file in this folder and one line
/// here; the raw.jsonl header carries what the report needs to know about each (see `WorkloadInfo`).
enum WorkloadRegistry {
    static let all: [any Workload] = [
        PingPong(),
        PingPongLatency(),
        Burst(),
        MultiProducer(),
        Wakeup(),
        Paced(),
        BatchBudget(),
        ActorHop(),
        TaskExecutorChildren(),
        CoreMicro(),
        EchoLatency(),
        EchoThroughput(),
        ConnectionChurn(),
    ]
}
