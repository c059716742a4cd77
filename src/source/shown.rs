//! How error messages name a URL: without what may be a secret.

/// `url` as error messages show it: without its query string and fragment (which may hold a
/// token) nor its user info (which may hold a password).
pub(crate) fn url_shown(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or("");
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::url_shown;

    #[test]
    fn shown_urls_hold_no_query_fragment_or_user_info() {
        for (url, want) in [
            ("http://h/p?token=x", "http://h/p"),
            ("https://user:pw@h:8080/a/b?q#f", "https://h:8080/a/b"),
            ("http://h#frag", "http://h"),
            ("http://u@h?x=@y", "http://h"),
            ("s3://bucket/key?versionId=1", "s3://bucket/key"),
            ("not a url?secret", "not a url"),
        ] {
            assert_eq!(url_shown(url), want, "{url}");
        }
    }
}
