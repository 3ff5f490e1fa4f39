/*
 * cloudtoken.h - for C applications that load the cloudtoken PKCS#11 module (libcloudtoken.so).
 *
 * cloudtoken is a standard PKCS#11 v2.40 library: use it with any pkcs11.h (OASIS, p11-kit, NSS)
 * through C_GetFunctionList, or C_GetInterface("PKCS 11", version 2.40). This header adds only what is
 * particular to cloudtoken: how to hand it its configuration, the strings it reports, and how its
 * tokens authenticate. It needs no other header.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef CLOUDTOKEN_H
#define CLOUDTOKEN_H

/*
 * Configuration.
 *
 * The module reads a TOML file (every key is documented in examples/cloudtoken.example.toml), found in
 * this order:
 *   1. C_Initialize's CK_C_INITIALIZE_ARGS.pReserved, when it points to the NUL-terminated string
 *      CLOUDTOKEN_CONF_PREFIX followed by the file's path (any other non-NULL pReserved is
 *      CKR_ARGUMENTS_BAD);
 *   2. the CLOUDTOKEN_CONFIG environment variable;
 *   3. $XDG_CONFIG_HOME/cloudtoken/cloudtoken.toml, else ~/.config/cloudtoken/cloudtoken.toml;
 *   4. /etc/cloudtoken/cloudtoken.toml.
 * A path given by 1 or 2 must exist. A file that is not acceptable (syntax, unknown key, writable by group
 * or others, not owned by the user or root, a refresh-token or password file that group or others can
 * access) makes C_Initialize return CKR_GENERAL_ERROR, with the reason in the log. No file at all gives
 * a module with no slots.
 *
 *     static char conf[] = CLOUDTOKEN_CONF_PREFIX "/home/me/.config/cloudtoken/work.toml";
 *     CK_C_INITIALIZE_ARGS args = { NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, conf };
 *     rv = functions->C_Initialize(&args);
 */
#define CLOUDTOKEN_CONF_PREFIX "cloudtoken_conf="
#define CLOUDTOKEN_CONFIG_ENV "CLOUDTOKEN_CONFIG"

/*
 * Logging goes to standard error (errors only) unless the configuration's [log] section or these
 * variables say otherwise: CLOUDTOKEN_LOG = off|error|warn|info|debug|trace, CLOUDTOKEN_LOG_FILE = path.
 * PINs, one-time passwords, SADs and tokens are never logged.
 */
#define CLOUDTOKEN_LOG_ENV "CLOUDTOKEN_LOG"
#define CLOUDTOKEN_LOG_FILE_ENV "CLOUDTOKEN_LOG_FILE"

/* What CK_INFO, CK_SLOT_INFO and CK_TOKEN_INFO report (blank-padded there, as PKCS#11 wants). */
#define CLOUDTOKEN_MANUFACTURER_ID "cloudtoken"
#define CLOUDTOKEN_TOKEN_MODEL "CSC remote token"

/*
 * Threads and processes.
 *
 * Each token's HTTP client runs a thread of its own: with CKF_LIBRARY_CANT_CREATE_OS_THREADS and at
 * least one configured token, C_Initialize returns CKR_NEED_TO_CREATE_THREADS. Application mutex
 * callbacks are accepted together with CKF_OS_LOCKING_OK (the module then uses OS locking), and refused
 * with CKR_CANT_LOCK without it. C_GetFunctionStatus and C_CancelFunction return
 * CKR_FUNCTION_NOT_PARALLEL. After fork(), the child sees CKR_CRYPTOKI_NOT_INITIALIZED until it calls
 * C_Initialize itself; it never uses the parent's connections or logins.
 */

/*
 * Authentication.
 *
 * One slot per configured token. Its mode (README, "Second factor: token modes and channels") sets the
 * flags: "pin" CKF_LOGIN_REQUIRED; "protected-path" also CKF_PROTECTED_AUTHENTICATION_PATH, where
 * C_Login(CKU_USER, NULL_PTR, 0) has the module ask for the PIN itself; "login-free" neither, and keys
 * are usable without any login (the module collects the PIN and one-time password at signing time).
 * Certificates and public keys are public objects in every mode; private keys appear after
 * C_Login(CKU_USER), or at once on a login-free token.
 *
 * C_Login(CKU_USER, value) stores the value and does not contact the service: the service checks it at
 * the first signature, and a wrong PIN then gives CKR_PIN_INCORRECT and logs the user out. The value is
 * the PIN, or the PIN immediately followed by the one-time password (a "passcode") when the credential
 * uses one (its OTP length comes from the service, else from the configuration's otp_length).
 *
 * A signature needs an authorization from the service. Under SCAL 1 one authorization covers a batch of
 * signatures (the configuration's batch_size, at most the credential's multisign) for every session of
 * the login; under SCAL 2 each signature is authorized for its own hash. When no one-time password is at
 * hand, C_Sign returns CKR_USER_NOT_LOGGED_IN; give one with C_Login(CKU_CONTEXT_SPECIFIC, otp) after
 * C_SignInit (the value may also be PIN+OTP). For credentials whose one-time password the service sends
 * (SMS), C_SignInit asks the service to send it (with a prompt command: right before the prompt asks).
 * Keys with CKA_ALWAYS_AUTHENTICATE (SCAL 2 credentials whose code neither a prompt nor a TOTP secret
 * file can give, or every key when the configuration says always_authenticate = true) need that context
 * login for each signing operation. The module's own channels
 * (a prompt command, a TOTP secret file, an out-of-band approval) add CKR_FUNCTION_CANCELED (the user
 * cancelled, or did not answer or approve in time). Service refusals map to CKR_PIN_INCORRECT (wrong PIN
 * or OTP), CKR_PIN_LOCKED, CKR_FUNCTION_REJECTED (access denied, a declined approval) and
 * CKR_DEVICE_ERROR (service unreachable).
 *
 * C_Sign with a NULL signature buffer, or one too small, is answered locally and never uses an
 * authorization.
 */

#endif /* CLOUDTOKEN_H */
