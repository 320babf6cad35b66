#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the package's own executables (`curriculum-worker`, `echo-server`,
/// `rssreader`, …) next to the running binary.
///
/// SwiftPM builds every product of a configuration into one folder
/// (`.build/<config>/`), so they sit beside the test bundle and beside the
/// `benchmarks` binary alike.
public enum SiblingExecutable {
    /// The path of the executable `name`: the value of the environment
    /// variable `override` if given and set, else the file of that name next
    /// to the running executable (`/proc/self/exe`) or next to `argv[0]`.
    ///
    /// - Throws: ``ProcessError/executableNotFound(name:searched:)`` listing
    ///   the places tried.
    public static func locate(_ name: String, override: String? = nil) throws(ProcessError) -> String {
        var candidates: [String] = []
        if let override, let value = getenv(override) {
            candidates.append(String(cString: value))
        }
        for executable in [selfExecutable(), CommandLine.arguments.first] {
            guard let executable, let slash = executable.lastIndex(of: "/") else { continue }
            candidates.append(String(executable[..<slash]) + "/" + name)
        }
        for candidate in candidates where access(candidate, X_OK) == 0 {
            return candidate
        }
        throw .executableNotFound(name: name, searched: candidates)
    }

    /// `readlink("/proc/self/exe")`: the absolute path of the running binary.
    public static func selfExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The first executable file called `name` in the directories of `PATH`
/// (`shutil.which`), or `nil`.
public func executableInPath(_ name: String, path: String? = nil) -> String? {
    let directories = (path ?? getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin").split(separator: ":")
    return directories.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
}
