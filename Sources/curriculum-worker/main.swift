// curriculum-worker: the child process of chapters 1 and 6.
//
// A plain synchronous program (no async `main`, no task started), so that a
// fresh run has exactly one OS thread: the main thread — the baseline that
// listing 1.2 asserts. Every subcommand prints `key=value` lines that
// `Parallelism.spawnWorker(job:)` parses; see `WorkerJob` for the catalogue.
CurriculumWorker.main()
