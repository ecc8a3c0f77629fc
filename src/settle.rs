//! Settlement of a period: carried state, statements, lines and traces.
