/// The MapReduce of chapter 6: map every input to a partial result, then
/// fold the partials into one (listing 6.6). Chapters 6.7–6.9 run the same
/// shape over the Ngram data, with threads or a process pool for the map.
///
/// - Parameters:
///   - inputs: the pieces of work (lines, chunks).
///   - map: turns one input into a partial result.
///   - reduce: combines two partial results; it must be associative and
///     commutative for parallel strategies to give the serial answer.
/// - Returns: the partials, in input order, and their fold (`nil` for no input).
public func mapReduce<Input, Partial>(
    _ inputs: some Sequence<Input>,
    map: (Input) throws -> Partial,
    reduce: (Partial, Partial) throws -> Partial
) rethrows -> (partials: [Partial], result: Partial?) {
    let partials = try inputs.map(map)
    guard var result = partials.first else { return ([], nil) }
    for partial in partials.dropFirst() { result = try reduce(result, partial) }
    return (partials, result)
}

/// Listing 6.6's word count: split on single spaces, count each word.
public enum WordCount {
    /// The words of `line` split on single spaces, counted. Empty pieces
    /// count as the word `""`, as Python's `line.split(" ")` gives them.
    public static func map(_ line: Substring) -> [String: Int] {
        var counts: [String: Int] = [:]
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            counts[String(word), default: 0] += 1
        }
        return counts
    }

    /// Adds two counts key by key (the reduce step). A new dictionary: the
    /// inputs are values and stay as they were (Python's merge mutates its
    /// first argument).
    public static func merge(_ a: [String: Int], _ b: [String: Int]) -> [String: Int] {
        a.merging(b, uniquingKeysWith: +)
    }
}
