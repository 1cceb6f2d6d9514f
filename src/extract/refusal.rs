//! yt-dlp's refusals read in its own words: which [`ExtractError`] an
//! `ERROR:` line is, whether a failure is the network's (an egress that
//! could not connect), and what it said of `YTDLP_ARGS`.

use super::ExtractError;

/// Whether yt-dlp's error says the network failed (the proxy refused the
/// tunnel, nothing answered) rather than the platform.
pub(super) fn is_unreachable(message: &str) -> bool {
    const WORDS: [&str; 12] = [
        "unable to connect to proxy",
        "tunnel connection failed",
        "proxyerror",
        "proxy error",
        "socks",
        "connection refused",
        "connection reset",
        "timed out",
        "network is unreachable",
        "failed to establish a new connection",
        "remote end closed connection",
        "connection aborted",
    ];
    let lower = message.to_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}

/// What yt-dlp said when it rejected `YTDLP_ARGS`: its `error:` line.
pub(super) fn rejection(stderr: &str) -> String {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let said = lines.clone().find(|l| l.contains("error:")).or_else(|| lines.next_back()).unwrap_or("no reason given");
    format!("YTDLP_ARGS: yt-dlp rejects them: {said}")
}

/// Turns yt-dlp's stderr into an error with its own `ERROR:` line, read
/// in yt-dlp's own words. The order matters: a bot check and a private
/// video both say "Sign in", and a country block says "unavailable".
pub(crate) fn classify(stderr: &str) -> ExtractError {
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ERROR:"))
        .map(|l| l.trim().to_owned())
        .unwrap_or_else(|| "the extractor failed without saying why".to_owned());
    // yt-dlp prints YouTube's curly apostrophe ("you’re").
    let lower = line.to_lowercase().replace('\u{2019}', "'");
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    const BOT: [&str; 6] = [
        "not a bot",
        "confirm you're not a robot",
        "http error 429",
        "too many requests",
        "rate-limited",
        "rate limited",
    ];
    const GEO: [&str; 5] = [
        "available in your country",
        "not available in your region",
        "from your location",
        "geo restriction",
        "geo-restricted",
    ];
    const SIGN_IN: [&str; 8] = [
        "confirm your age",
        "age-restricted",
        "age restricted",
        "inappropriate for some users",
        "members-only",
        "login required",
        "requires authentication",
        "sign in to",
    ];
    const GONE: [&str; 10] = [
        "unavailable",
        "private video",
        "not available",
        "does not exist",
        "has been removed",
        "http error 404",
        "unsupported url",
        "no video formats",
        "no video could be found",
        "video not found",
    ];
    // A channel that is not live now, or a live that has not begun: it may
    // start any moment, so this is remembered only briefly.
    const NOT_LIVE: [&str; 4] = ["not currently live", "live event will begin", "premieres in", "is offline"];
    if has(&BOT) {
        ExtractError::BotCheck(line)
    } else if has(&NOT_LIVE) {
        ExtractError::NotLive(line)
    } else if has(&GEO) {
        ExtractError::GeoBlocked(line)
    } else if lower.contains("private video") {
        ExtractError::Unavailable(line)
    } else if has(&SIGN_IN) {
        ExtractError::SignInRequired(line)
    } else if has(&GONE) {
        ExtractError::Unavailable(line)
    } else {
        ExtractError::Failed(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_ytdlp_errors() {
        let e = classify("WARNING: x\nERROR: [youtube] abc: Video unavailable\n");
        assert!(matches!(e, ExtractError::Unavailable(ref m) if m == "[youtube] abc: Video unavailable"));
        assert!(matches!(classify("ERROR: Unable to download webpage: boom"), ExtractError::Failed(_)));
        assert!(matches!(classify("Traceback..."), ExtractError::Failed(_)));
    }

    /// yt-dlp's own words for each refusal.
    #[test]
    fn reads_refusals_plainly() {
        let cases = [
            ("ERROR: [twitch:stream] somechannel: The channel is not currently live", "not_live"),
            ("ERROR: [youtube] abcdefghijk: This live event will begin in 3 hours.", "not_live"),
            (
                "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you\u{2019}re not a bot. Use --cookies-from-browser or --cookies for the authentication.",
                "bot_check",
            ),
            (
                "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 429: Too Many Requests",
                "bot_check",
            ),
            (
                "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm your age. This video may be inappropriate for some users. Use --cookies-from-browser or --cookies for the authentication.",
                "sign_in_required",
            ),
            (
                "ERROR: [youtube] dQw4w9WgXcQ: Join this channel to get access to members-only content like this video, and other exclusive perks.",
                "sign_in_required",
            ),
            (
                "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. The uploader has not made this video available in your country",
                "geo_blocked",
            ),
            (
                "ERROR: [BiliBili] BV1xx411c7mD: This video is not available from your location due to geo restriction",
                "geo_blocked",
            ),
            (
                "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video. Use --cookies-from-browser or --cookies for the authentication.",
                "unavailable",
            ),
            (
                "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader",
                "unavailable",
            ),
        ];
        for (stderr, outcome) in cases {
            assert_eq!(classify(stderr).outcome(), outcome, "{stderr}");
        }
    }
}
