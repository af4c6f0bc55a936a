//! NATS JWTs for operator mode, signed with NKeys: an operator, a system account, an account
//! with JetStream, and a user in a `.creds` file. The format is a standard JWT whose algorithm is
//! `ed25519-nkey`: base64url header and claims, signed by the issuer's NKey.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

/// One signed JWT: `subject`'s claims (`nats` says which kind), issued by `issuer`.
fn encode(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "typ": "JWT", "alg": "ed25519-nkey" }).to_string());
    let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({
        "jti": format!("{}{iat}", name.to_uppercase()),
        "iat": iat,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = issuer.sign(signed.as_bytes()).expect("sign the JWT");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An operator, its system account and one account with JetStream, as a server's resolver needs them.
pub struct Operator {
    key: KeyPair,
    system: KeyPair,
    /// The account Switchboard's user belongs to.
    pub account: KeyPair,
}

impl Operator {
    /// Fresh keys for the operator and both accounts.
    pub fn new() -> Operator {
        Operator { key: KeyPair::new_operator(), system: KeyPair::new_account(), account: KeyPair::new_account() }
    }

    fn account_jwt(&self, account: &KeyPair, name: &str, jetstream: bool) -> String {
        let storage = if jetstream { -1 } else { 0 };
        let limits = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
            "conn": -1, "leaf": -1, "mem_storage": storage, "disk_storage": storage, "streams": -1, "consumer": -1,
        });
        encode(&self.key, &account.public_key(), name, json!({ "type": "account", "version": 2, "limits": limits }))
    }

    /// The server's configuration for this operator: its JWT, the system account and a memory
    /// resolver preloaded with both accounts.
    pub fn server_block(&self) -> String {
        let operator = encode(
            &self.key,
            &self.key.public_key(),
            "test-operator",
            json!({ "type": "operator", "version": 2, "system_account": self.system.public_key() }),
        );
        format!(
            "operator: {operator}\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{\n  {sys}: {sys_jwt}\n  {acc}: {acc_jwt}\n}}\n",
            sys = self.system.public_key(),
            sys_jwt = self.account_jwt(&self.system, "SYS", false),
            acc = self.account.public_key(),
            acc_jwt = self.account_jwt(&self.account, "SWITCHBOARD", true),
        )
    }
}

/// A `.creds` file's contents for a new user issued by `account` (which the server may or may
/// not trust).
pub fn user_creds(account: &KeyPair) -> String {
    let user = KeyPair::new_user();
    let nats = json!({ "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2 });
    let jwt = encode(account, &user.public_key(), "switchboard", nats);
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().expect("the user's seed")
    )
}
