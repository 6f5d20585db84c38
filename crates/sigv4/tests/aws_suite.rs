//! Cases of the AWS SigV4 test suite (2015-08-30 edition) that apply to
//! non-S3 services, written out from the documented inputs: access key
//! `AKIDEXAMPLE`, secret `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, region
//! `us-east-1`, service `service`, time `20150830T123600Z`, host
//! `example.amazonaws.com`.

mod common;

use common::{Keys, Wire, at};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
/// 2015-08-30T12:36:00Z
const NOW: i64 = 1_440_938_160;
const HOST: &str = "example.amazonaws.com";

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    /// Besides Host and X-Amz-Date (which every case has).
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    signed_headers: &'static str,
    signature: &'static str,
}

const VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
const POST_VANILLA: &str = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";
const HX: &str = "host;x-amz-date";

const fn get(name: &'static str, path: &'static str, signature: &'static str) -> Case {
    Case {
        name,
        method: "GET",
        path,
        query: None,
        headers: &[],
        body: b"",
        signed_headers: HX,
        signature,
    }
}

const CASES: &[Case] = &[
    get("get-vanilla", "/", VANILLA),
    Case {
        query: Some(""),
        ..get("get-vanilla-query", "/", VANILLA)
    },
    Case {
        query: Some("Param1=value1"),
        ..get(
            "get-vanilla-empty-query-key",
            "/",
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
        )
    },
    Case {
        query: Some("Param2=value2&Param1=value1"),
        ..get(
            "get-vanilla-query-order-key-case",
            "/",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        )
    },
    Case {
        query: Some(
            "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\
             =-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        ),
        ..get(
            "get-vanilla-query-unreserved",
            "/",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        )
    },
    Case {
        query: Some("\u{1234}=bar"),
        ..get(
            "get-vanilla-utf8-query",
            "/",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        )
    },
    Case {
        headers: &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        signed_headers: "host;my-header1;x-amz-date",
        ..get(
            "get-header-key-duplicate",
            "/",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        )
    },
    Case {
        headers: &[
            ("My-Header1", "value4"),
            ("My-Header1", "value1"),
            ("My-Header1", "value3"),
            ("My-Header1", "value2"),
        ],
        signed_headers: "host;my-header1;x-amz-date",
        ..get(
            "get-header-value-order",
            "/",
            "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        )
    },
    Case {
        headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        signed_headers: "host;my-header1;my-header2;x-amz-date",
        ..get(
            "get-header-value-trim",
            "/",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        )
    },
    get(
        "get-unreserved",
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    get(
        "get-utf8",
        "/\u{1234}",
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    get(
        "normalize-path/get-space",
        "/example space/",
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    ),
    get("normalize-path/get-slash", "//", VANILLA),
    get("normalize-path/get-slash-dot-slash", "/./", VANILLA),
    get("normalize-path/get-relative", "/example/..", VANILLA),
    get(
        "normalize-path/get-relative-relative",
        "/example1/example2/../..",
        VANILLA,
    ),
    get(
        "normalize-path/get-slash-pointless-dot",
        "/./example",
        "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    ),
    get(
        "normalize-path/get-slashes",
        "//example//",
        "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    ),
    Case {
        method: "POST",
        ..get("post-vanilla", "/", POST_VANILLA)
    },
    Case {
        method: "POST",
        query: Some("Param1=value1"),
        ..get(
            "post-vanilla-query",
            "/",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        )
    },
    Case {
        method: "POST",
        headers: &[("My-Header1", "value1")],
        signed_headers: "host;my-header1;x-amz-date",
        ..get(
            "post-header-key-sort",
            "/",
            "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        )
    },
    Case {
        method: "POST",
        headers: &[("My-Header1", "VALUE1")],
        signed_headers: "host;my-header1;x-amz-date",
        ..get(
            "post-header-value-case",
            "/",
            "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        )
    },
    Case {
        method: "POST",
        headers: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: b"Param1=value1",
        signed_headers: "content-type;host;x-amz-date",
        ..get(
            "post-x-www-form-urlencoded",
            "/",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        )
    },
    Case {
        method: "POST",
        headers: &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf8",
        )],
        body: b"Param1=value1",
        signed_headers: "content-type;host;x-amz-date",
        ..get(
            "post-x-www-form-urlencoded-parameters",
            "/",
            "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
        )
    },
    // post-sts-header-after: the session token is added after signing, so
    // it is not a signed header and does not change the signature.
    Case {
        method: "POST",
        headers: &[(
            "X-Amz-Security-Token",
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqw",
        )],
        ..get("post-sts-header-after", "/", POST_VANILLA)
    },
];

fn wire(c: &Case, date_header_name: &str) -> Wire {
    let mut headers = vec![
        ("Host".to_owned(), HOST.as_bytes().to_vec()),
        (date_header_name.to_owned(), DATE.as_bytes().to_vec()),
    ];
    for (n, v) in c.headers {
        headers.push(((*n).to_owned(), v.as_bytes().to_vec()));
    }
    headers.push((
        "Authorization".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={}, Signature={}",
            c.signed_headers, c.signature
        )
        .into_bytes(),
    ));
    Wire {
        method: c.method.to_owned(),
        path: c.path.to_owned(),
        query: c.query.map(str::to_owned),
        headers,
        body: c.body.to_vec(),
    }
}

#[test]
fn aws_test_suite_cases_verify() {
    let keys = Keys::one(AKID, SECRET);
    for c in CASES {
        for date_name in ["X-Amz-Date", "x-amz-date"] {
            let w = wire(c, date_name);
            if let Err(e) = w.verify_with(&keys, at(NOW), "service") {
                panic!("{}: {} {}", c.name, e.code(), e.message());
            }
        }
    }
}

#[test]
fn aws_test_suite_cases_reject_tampering() {
    let keys = Keys::one(AKID, SECRET);
    for c in CASES {
        let w = wire(c, "X-Amz-Date");
        let mut m = w.clone();
        m.body.push(b'!');
        let e = m.verify_with(&keys, at(NOW), "service").unwrap_err();
        assert_eq!(e.code(), "InvalidSignatureException", "{}", c.name);

        let e = w
            .verify_with(
                &Keys::one(AKID, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ"),
                at(NOW),
                "service",
            )
            .unwrap_err();
        assert_eq!(e.code(), "InvalidSignatureException", "{}", c.name);

        let e = w
            .verify_with(&keys, at(NOW), "bedrock-agentcore")
            .unwrap_err();
        assert_eq!(e.code(), "InvalidSignatureException", "{}", c.name);
        assert_eq!(
            e.message(),
            "Credential should be scoped to correct service: 'bedrock-agentcore'."
        );
    }
}

/// get-vanilla with a `Date` header instead of `X-Amz-Date`: the time for the
/// string to sign comes from `Date` (converted to ISO-8601 basic) and `date`
/// is the signed header. The expected signature is computed here with the
/// `aws-sigv4` primitives from a hand-written canonical request.
#[test]
fn date_header_instead_of_x_amz_date() {
    use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
    use sha2::Digest;
    use std::time::{Duration, SystemTime};

    let http_date = "Sun, 30 Aug 2015 12:36:00 GMT";
    let creq = format!(
        "GET\n/\n\ndate:{http_date}\nhost:{HOST}\n\ndate;host\n{}",
        hex::encode(sha2::Sha256::digest(b""))
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n{DATE}\n20150830/us-east-1/service/aws4_request\n{}",
        hex::encode(sha2::Sha256::digest(creq.as_bytes()))
    );
    let key = generate_signing_key(
        SECRET,
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW as u64),
        "us-east-1",
        "service",
    );
    let signature = calculate_signature(key, sts.as_bytes());
    let w = Wire {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: None,
        headers: vec![
            ("Host".to_owned(), HOST.as_bytes().to_vec()),
            ("Date".to_owned(), http_date.as_bytes().to_vec()),
            (
                "Authorization".to_owned(),
                format!(
                    "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=date;host, Signature={signature}"
                )
                .into_bytes(),
            ),
        ],
        body: Vec::new(),
    };
    let keys = Keys::one(AKID, SECRET);
    let v = w.verify_with(&keys, at(NOW), "service").unwrap();
    assert_eq!(v.region, "us-east-1");
    // 16 minutes later the Date-header request has expired like any other.
    let e = w
        .verify_with(&keys, at(NOW + 16 * 60), "service")
        .unwrap_err();
    assert_eq!(
        e.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z \
         (20150830T125200Z - 15 min.)"
    );
}
