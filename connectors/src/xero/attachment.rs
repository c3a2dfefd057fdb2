//! The work report's PDF on the Xero draft: `PUT /Invoices/{InvoiceID}/
//! Attachments/{FileName}` with the raw bytes (`IncludeOnline=true`, so it
//! goes out with the online invoice). The file name names customer, period
//! and revision; the daemon lists the invoice's attachments first and
//! uploads only when that name is not there, so a retry after a lost answer
//! attaches nothing twice.

use super::transformers::{AttachmentList, read};
use super::{SYSTEM, XeroConfig, check};
use crate::Result;
use crate::accounting::encode;
use crate::{ConnectorError, HttpMethod, HttpRequest, HttpResponse};

/// A path segment: percent-encoded, spaces as %20 (a literal `+` is already %2B).
fn segment(s: &str) -> String {
    encode(s).replace('+', "%20")
}

impl XeroConfig {
    /// A refused attachment call: a 403, or a 401 although the daemon has
    /// just fetched a fresh token (it renews once on a 401), is the
    /// `accounting.attachments` scope missing (Xero answers either).
    pub(super) fn check_attachments(&self, r: &HttpResponse) -> Result<()> {
        match r.status {
            401 | 403 => {
                Err(self.scope_missing(r.status, super::scopes::ATTACHMENTS, "the report PDF"))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn list_attachments_request(&self, invoice_id: &str) -> HttpRequest {
        self.get(format!("/Invoices/{}/Attachments", encode(invoice_id)))
    }

    pub(super) fn attach_request(
        &self,
        invoice_id: &str,
        file_name: &str,
        mime: &str,
        bytes: &[u8],
    ) -> HttpRequest {
        let mut r = self.request(
            HttpMethod::Put,
            format!(
                "{}/Invoices/{}/Attachments/{}?IncludeOnline=true",
                self.base_url,
                segment(invoice_id),
                segment(file_name)
            ),
            bytes.to_vec(),
        );
        r.headers.retain(|(k, _)| k != "content-type");
        r.headers.push(("content-type".into(), mime.to_owned()));
        r
    }
}

/// The file names attached to the invoice.
pub(super) fn attachment_names(r: &HttpResponse) -> Result<Vec<String>> {
    let list: AttachmentList = read(check(r)?, "the attachment list")?;
    Ok(list.attachments.into_iter().map(|a| a.file_name).collect())
}

/// Xero answers the upload with the attachment it stored.
pub(super) fn attached(r: &HttpResponse, file_name: &str) -> Result<()> {
    let names = attachment_names(r)?;
    if names.iter().any(|n| n == file_name) {
        Ok(())
    } else {
        Err(ConnectorError::Transient(format!(
            "{SYSTEM}: the upload of {file_name} was answered without it"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_missing;

    fn config() -> XeroConfig {
        serde_json::from_value(serde_json::json!({
            "base_url": "https://api.xero.test/api.xro/2.0",
            "client_id": "c",
            "client_secret": "s",
            "tenant_id": "t-1",
            "contacts": {}
        }))
        .unwrap()
    }

    #[test]
    fn the_pdf_goes_up_as_raw_bytes_under_its_name() {
        let r = config().attach_request(
            "inv 1",
            "report riga-bakery.pdf",
            "application/pdf",
            b"%PDF-1.7",
        );
        assert_eq!(r.method, HttpMethod::Put);
        assert_eq!(
            r.url,
            "https://api.xero.test/api.xro/2.0/Invoices/inv%201/Attachments/report%20riga-bakery.pdf?IncludeOnline=true"
        );
        assert_eq!(r.body, b"%PDF-1.7");
        let header = |k: &str| {
            r.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("content-type"), Some("application/pdf"));
        assert_eq!(header("xero-tenant-id"), Some("t-1"));
    }

    #[test]
    fn attachment_names_are_read_from_the_answer() {
        let r = HttpResponse {
            status: 200,
            body: r#"{"Attachments":[{"AttachmentID":"a","FileName":"x.pdf","MimeType":"application/pdf"}]}"#.into(),
            retry_after: None,
        };
        assert_eq!(attachment_names(&r).unwrap(), vec!["x.pdf"]);
        assert!(attached(&r, "x.pdf").is_ok());
        assert!(attached(&r, "y.pdf").is_err());
        // A renamed file name is an error, not an attachment missing (which would upload it again).
        let renamed = HttpResponse {
            status: 200,
            body: r#"{"Attachments":[{"AttachmentID":"a","Name":"x.pdf"}]}"#.into(),
            retry_after: None,
        };
        let e = attachment_names(&renamed).unwrap_err().to_string();
        assert_missing(&e, "Attachments[0]", "FileName");
    }
}
