import Testing

extension Tag {
    /// Asserts wall-clock bounds or burns CPU: runs alone (see `.curriculum`).
    @Tag public static var timing: Tag
    /// Talks to the loopback `StubHTTPServer`.
    @Tag public static var http: Tag
    /// Needs a real PostgreSQL (embedded cluster or `DATABASE_URL`).
    @Tag public static var postgres: Tag
    /// Spawns child processes of the package's executables.
    @Tag public static var processes: Tag
    /// Drives a program through a terminal.
    @Tag public static var terminal: Tag
}
