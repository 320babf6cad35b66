// delay-app: listing 8.10's full-screen delay app. Type a number of seconds
// and Enter: a delay starts, and "Start sleeping…" / "End sleeping…" scroll
// in above while the input line at the bottom stays as you left it.
//
//   swift run delay-app [--unit-ms MS]
//
// Ctrl-C (SIGINT) or SIGTERM cancels the running delays, restores the
// terminal and exits 0. Exit 2 when stdin/stdout are not a terminal.

#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore
import Streams
import TerminalUI

guard let unit = DelayPrompt.unit(fromArguments: Array(CommandLine.arguments.dropFirst())) else {
    Terminal.write("usage: delay-app [--unit-ms MS]   (type a number of seconds and Enter; Ctrl-C quits)\n", to: 2)
    exit(2)
}

let status = await Book.$second.withValue(unit) {
    await TerminalSession.run(name: "delay-app") { screen, input in
        await screen.post(DelayPrompt.hint)
        try await DelayPrompt.run(lines: input.editedLines(echoingOn: screen), post: screen.post)
    }
}
exit(status)
