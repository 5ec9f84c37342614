//! Live lines: one line per change and a short line per tick, summarised per group when a tick
//! changes more than fits on a screen.
