//! What each provider kind needs beyond the wire dialect it speaks: its address, its
//! authentication, its envelope around the dialect, its error shapes.

pub mod bedrock;
