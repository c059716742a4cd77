//! An object store's URL and options made into a store (`Builder::spawn_object_url`): the
//! scheme picks the store; a cloud's builder starts from its environment (`from_env`), then
//! takes the options, each key checked, and the cache's retry policy.

use crate::range::invalid_input;
use crate::source::RetryPolicy;
use object_store::path::Path;
use object_store::{aws, azure, gcp, local::LocalFileSystem, memory::InMemory};
use object_store::{ObjectStore, ObjectStoreScheme, RetryConfig};
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The store and path that `url` names, built with `options` over the environment. `shown`
/// is the URL as messages name it (without its query string).
///
/// # Errors
///
/// `InvalidInput` for a URL that is not an object store's, an option key the store does not
/// know (object_store's `parse_url_opts` would skip it, and a typo in `aws_endpoint` would
/// send the requests to AWS), options for `file://` or `memory://`, or options that make no
/// client. No message names an option's value.
pub(crate) fn store_from_url(
    url: &str,
    shown: &str,
    options: &[(&str, &str)],
    retry: RetryPolicy,
) -> io::Result<(Arc<dyn ObjectStore>, Path)> {
    let bad = |what: String| invalid_input(format!("{shown:?}: {what}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
    let (scheme, location) = ObjectStoreScheme::parse(&parsed).map_err(|_| {
        bad("not an object store's URL (s3://, gs://, az://, file://, memory://)".to_owned())
    })?;
    let no_options = |what: &str| match options.first() {
        Some((key, _)) => Err(bad(format!("{what} takes no options, got {key:?}"))),
        None => Ok(()),
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => {
            no_options("file://")?;
            Arc::new(LocalFileSystem::new())
        }
        ObjectStoreScheme::Memory => {
            no_options("memory://")?;
            Arc::new(InMemory::new())
        }
        ObjectStoreScheme::AmazonS3 => cloud::<aws::AmazonS3Builder>(url, options, retry, bad)?,
        ObjectStoreScheme::GoogleCloudStorage => {
            cloud::<gcp::GoogleCloudStorageBuilder>(url, options, retry, bad)?
        }
        ObjectStoreScheme::MicrosoftAzure => {
            cloud::<azure::MicrosoftAzureBuilder>(url, options, retry, bad)?
        }
        _ => {
            return Err(bad(
                "an http(s) URL that is not an object store's: that is spawn_url (feature \
                 `http`)"
                    .to_owned(),
            ))
        }
    };
    Ok((store, location))
}

/// What the three cloud builders share, by name but not by trait.
trait CloudBuilder: Sized {
    /// The builder's configuration key (`AmazonS3ConfigKey`, ...).
    type Key: FromStr;
    fn from_env_with_url(url: &str) -> Self;
    fn with_config(self, key: Self::Key, value: String) -> Self;
    fn build_with_retry(self, retry: RetryConfig) -> object_store::Result<Arc<dyn ObjectStore>>;
}

macro_rules! cloud_builder {
    ($builder:ty, $key:ty) => {
        impl CloudBuilder for $builder {
            type Key = $key;
            fn from_env_with_url(url: &str) -> Self {
                <$builder>::from_env().with_url(url)
            }
            fn with_config(self, key: $key, value: String) -> Self {
                <$builder>::with_config(self, key, value)
            }
            fn build_with_retry(
                self,
                retry: RetryConfig,
            ) -> object_store::Result<Arc<dyn ObjectStore>> {
                Ok(Arc::new(self.with_retry(retry).build()?))
            }
        }
    };
}

cloud_builder!(aws::AmazonS3Builder, aws::AmazonS3ConfigKey);
cloud_builder!(gcp::GoogleCloudStorageBuilder, gcp::GoogleConfigKey);
cloud_builder!(azure::MicrosoftAzureBuilder, azure::AzureConfigKey);

/// A cloud store: the environment, then `options` (every key checked), then `retry`.
fn cloud<B: CloudBuilder>(
    url: &str,
    options: &[(&str, &str)],
    retry: RetryPolicy,
    bad: impl Fn(String) -> io::Error,
) -> io::Result<Arc<dyn ObjectStore>> {
    install_tls_provider();
    let mut builder = B::from_env_with_url(url);
    for (key, value) in options {
        let Ok(parsed) = key.to_ascii_lowercase().parse::<B::Key>() else {
            return Err(bad(format!(
                "the option {key:?} is not one this store knows"
            )));
        };
        builder = builder.with_config(parsed, (*value).to_owned());
    }
    builder
        .build_with_retry(retry_config(retry))
        .map_err(|e| bad(format!("the store's options do not make a client: {e}")))
}

/// The cache's `retries` and `retry_backoff` as object_store's retry settings.
fn retry_config(retry: RetryPolicy) -> RetryConfig {
    RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: retry.first_backoff.max(Duration::from_millis(1)),
            ..Default::default()
        },
        max_retries: retry.retries as usize,
        ..Default::default()
    }
}

/// reqwest is built without a TLS crypto provider of its own (the default, aws-lc, needs
/// cmake): ring is made the process's default, unless the program installed one already.
fn install_tls_provider() {
    // An error means a provider is installed already: that one is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
