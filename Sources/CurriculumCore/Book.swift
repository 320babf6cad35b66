/// The book's unit of time, scaled.
///
/// The book's listings sleep for whole seconds. The runnable apps keep that
/// (`Book.second == .seconds(1)`), while the test suite binds a much shorter
/// unit (50–100 ms) so that "three tasks of three seconds" runs in 150 ms.
///
/// It is a `@TaskLocal`: bind it around a scope with
/// `Book.$second.withValue(.milliseconds(50)) { … }`. Child tasks (task groups,
/// `async let`, `Task {}`) inherit it; `Task.detached` and plain threads do not.
public enum Book {
    /// One "book second". Defaults to a real second.
    @TaskLocal public static var second: Duration = .seconds(1)

    /// `n` book seconds, e.g. `Book.seconds(1.5)`.
    public static func seconds(_ n: Double) -> Duration {
        second * n
    }
}

extension Duration {
    /// This duration expressed in book seconds (`self / Book.second`).
    public var inBookSeconds: Double { self / Book.second }
}
