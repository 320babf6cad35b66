/// A FIFO between threads, on a ``Monitor``. Consumers
/// sleep in ``take()`` until there is an element or the queue closes. The
/// thread pool's job queue, and a pool worker's queue of received jobs.
///
/// `@unchecked Sendable`: every field below is read and written only with
/// the monitor's mutex held.
public final class BlockingQueue<Element>: @unchecked Sendable {
    private let monitor = Monitor()
    private var elements: [Element?] = []
    private var head = 0
    private var closed = false
    /// Called with the number of waiting elements after every change, under
    /// the mutex (so the calls come in order). It must not call back into the queue.
    private let onCountChange: (@Sendable (Int) -> Void)?

    public init(onCountChange: (@Sendable (Int) -> Void)? = nil) {
        self.onCountChange = onCountChange
    }

    private func locked<T>(_ body: () -> T) -> T { monitor.withLock(body) }

    /// Appends `element` and wakes one consumer; false once the queue is closed.
    @discardableResult
    public func put(_ element: Element) -> Bool {
        locked {
            guard !closed else { return false }
            elements.append(element)
            onCountChange?(elements.count - head)
            monitor.signal()
            return true
        }
    }

    /// The oldest element, waiting for one; nil when the queue is closed and empty.
    public func take() -> Element? {
        locked {
            while head == elements.count && !closed {
                monitor.wait()
            }
            guard head < elements.count else { return nil }
            let element = elements[head].take()
            head += 1
            compact()
            onCountChange?(elements.count - head)
            return element
        }
    }

    /// Removes the oldest waiting element that satisfies `predicate`; whether one did.
    public func remove(where predicate: (Element) -> Bool) -> Bool {
        locked {
            guard let i = elements[head...].firstIndex(where: { $0.map(predicate) ?? false }) else { return false }
            elements.remove(at: i)
            compact()
            onCountChange?(elements.count - head)
            return true
        }
    }

    /// No more elements are accepted; consumers drain what is queued, then get nil.
    public func close() {
        locked {
            closed = true
            monitor.broadcast()
        }
    }

    /// FIFO without shifting the array on every take (10,000 queued elements stay O(1) each).
    private func compact() {
        if head == elements.count {
            elements.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= elements.count {
            elements.removeFirst(head)
            head = 0
        }
    }
}
