// delay-prompt: listing 8.6. Type a number of seconds per line; each starts a
// delay that prints when it starts and ends, while the next line is read.
//
//   swift run delay-prompt [--unit-ms MS]
//   printf '3\n1\n' | swift run delay-prompt
//
// Standard input is read by StdinReader (non-blocking for pipes and
// terminals, a pool thread for a regular file): the delays run while the
// prompt waits. At end of input it waits for the running delays, then exits 0.
// --unit-ms scales a "second" (the tests use it). Exit 2 on bad arguments.

#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore
import Streams
import TerminalUI

guard let unit = DelayPrompt.unit(fromArguments: Array(CommandLine.arguments.dropFirst())) else {
    Terminal.write("usage: delay-prompt [--unit-ms MS]   (one number of seconds per line on stdin)\n", to: 2)
    exit(2)
}

/// One line on stdout, at once (the messages come from several tasks).
@Sendable func say(_ text: String) { Terminal.write(text + "\n") }

do {
    try await Book.$second.withValue(unit) {
        try await StdinReader.withReader(fd: 0) { input in
            try await DelayPrompt.run(lines: input.lines, post: say)
        }
    }
} catch {
    Terminal.write("delay-prompt: \(error)\n", to: 2)
    exit(1)
}
