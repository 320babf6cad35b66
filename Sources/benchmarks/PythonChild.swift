import Foundation

#if canImport(Glibc)
import Glibc
#endif
import Processes

/// A python3 script of `Scripts/` run as a child of a benchmark: the book's
/// Python side of a comparison, measured on the same machine, same moment.
///
/// Scripts are found relative to the current directory (run the benchmarks
/// from the package root, as `swift run` does). Every failure — no python3,
/// no script, a missing module — is reported as `nil`/an error with the
/// reason, so a benchmark prints "not measured" instead of crashing.
struct PythonChild {
    /// Why a script could not run.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `Scripts/<name>` if it exists in the current directory.
    static func script(_ name: String) throws(Failure) -> String {
        let path = "Scripts/\(name)"
        guard FileManager.default.fileExists(atPath: path) else {
            throw Failure(description: "\(path) not found (run from the package root)")
        }
        return path
    }

    /// Runs `python3 arguments…` to completion and returns its standard output.
    ///
    /// Through the package's child-process runner (`Processes.runProgram`):
    /// both pipes are drained together (a script that fills its stderr pipe
    /// cannot stall it) and the child is reaped by its own pid.
    /// - Throws: ``Failure`` if python3 cannot start or exits non-zero (with its stderr).
    static func run(_ arguments: [String]) async throws -> String {
        let run: CollectedOutput
        do {
            run = try await runProgram("/usr/bin/env", arguments: ["python3", "-u"] + arguments).output
        } catch {
            throw Failure(description: "cannot start python3: \(error)")
        }
        guard run.termination.succeeded else {
            let reason = run.standardErrorText.split(separator: "\n").last.map(String.init) ?? ""
            throw Failure(description: "python3 \(arguments.first ?? "") \(run.termination): \(reason)")
        }
        return run.standardOutputText
    }

    /// The value of `key=` in the `RESULT` line of a script's output.
    static func result(_ key: String, in output: String) -> Double? {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else { return nil }
        for field in line.split(separator: " ") where field.hasPrefix("\(key)=") {
            return Double(field.dropFirst(key.count + 1))
        }
        return nil
    }

    let process: ChildProcess

    /// Starts `python3 arguments…` (unbuffered) without waiting for it; its
    /// standard error goes to ours.
    static func start(_ arguments: [String]) throws -> PythonChild {
        do {
            let child = try ChildProcess.spawn(
                "/usr/bin/env", arguments: ["python3", "-u"] + arguments, standardError: .inherit)
            return PythonChild(process: child)
        } catch {
            throw Failure(description: "cannot start python3: \(error)")
        }
    }

    /// Starts a server script that prints `listening PORT` once it accepts
    /// connections (every server script of `Scripts/` does), and returns it
    /// with that port. Blocks until the line arrives or the child's output
    /// ends; a child that ends without it is stopped and reported.
    static func startServer(_ arguments: [String]) throws -> (child: PythonChild, port: Int) {
        let child = try start(arguments)
        guard let port = listeningPort(of: child.process) else {
            child.stop()
            throw Failure(description: "\(arguments.first ?? "the script") did not print `listening PORT`")
        }
        return (child, port)
    }

    /// The port in a server child's first line, `listening PORT` (the
    /// scripts' and the package's servers' convention), or `nil`.
    static func listeningPort(of process: ChildProcess) -> Int? {
        guard let line = PythonChild(process: process).firstLine(), line.hasPrefix("listening ") else { return nil }
        return Int(line.dropFirst("listening ".count))
    }

    /// Reads the child's standard output up to the first newline (blocking).
    func firstLine() -> String? {
        var bytes: [UInt8] = []
        while let chunk = try? process.standardOutput?.read(exactly: 1), let byte = chunk.first {
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return nil
    }

    /// Stops the child (SIGKILL: a script owes us no clean exit) and reaps it.
    func stop() {
        process.kill()
        _ = process.waitForExit()
    }
}
