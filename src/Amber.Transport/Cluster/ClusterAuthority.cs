using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace Amber.Transport.Cluster;

/// <summary>
/// The cluster's certificate authority: a directory holding <c>ca.crt</c> (the CA certificate, which
/// every node trusts and nothing else) and <c>ca.key</c> (its key, 0600, needed only to add nodes),
/// and per node <c>NAME.crt</c> and <c>NAME.key</c>. Keys are ECDSA P-256; a node's certificate names
/// it (subject CN and DNS name) and serves both ends of a mutual-TLS connection.
/// </summary>
public static partial class ClusterAuthority
{
    /// <summary>The CA's certificate in a cluster directory.</summary>
    public const string CaCertificate = "ca.crt";

    /// <summary>The CA's key in a cluster directory (0600).</summary>
    public const string CaKey = "ca.key";
    private static readonly TimeSpan CaLifetime = TimeSpan.FromDays(3650);
    private static readonly TimeSpan NodeLifetime = TimeSpan.FromDays(825);
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Public = Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>A node's name: what its certificate says it is (letters, digits, '-', '_', '.', up to 63).</summary>
    public static bool IsNodeName(string name) => NodeName().IsMatch(name);

    /// <summary>What <see cref="IsNodeName"/> takes, for messages.</summary>
    public const string NodeNameRule = "letters, digits, '-', '_' and '.', up to 63, starting with a letter or digit";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    private static partial Regex NodeName();

    /// <summary>Makes a new cluster CA in <paramref name="directory"/> (made if missing); returns its certificate's subject.</summary>
    /// <exception cref="IOException">The directory has a CA already (nothing is overwritten), or cannot be written.</exception>
    public static string Init(string directory)
    {
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        if (File.Exists(Path.Join(directory, CaCertificate)) || File.Exists(Path.Join(directory, CaKey)))
            throw new IOException($"{directory} has a cluster CA already ({CaCertificate}); a second one would cut every node off from the first");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=amber cluster {Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        using var ca = request.CreateSelfSigned(now.AddMinutes(-5), now + CaLifetime);
        WriteNew(Path.Join(directory, CaKey), key.ExportPkcs8PrivateKeyPem(), Private);
        WriteNew(Path.Join(directory, CaCertificate), ca.ExportCertificatePem(), Public);
        return ca.Subject;
    }

    /// <summary>Issues node <paramref name="name"/>'s certificate and key into the CA's directory; returns the certificate's path.</summary>
    /// <exception cref="IOException">No CA there, its key unreadable, or the node has a certificate already.</exception>
    public static string AddNode(string directory, string name)
    {
        if (!IsNodeName(name))
            throw new ArgumentException($"'{name}' is not a node name ({NodeNameRule})", nameof(name));
        string caCertificate = Path.Join(directory, CaCertificate), caKey = Path.Join(directory, CaKey);
        if (!File.Exists(caCertificate) || !File.Exists(caKey))
            throw new IOException($"{directory} has no cluster CA ({CaCertificate} and {CaKey}): make one with amber cluster init --dir {directory}");
        string certificatePath = Path.Join(directory, name + ".crt"), keyPath = Path.Join(directory, name + ".key");
        if (File.Exists(certificatePath) || File.Exists(keyPath))
            throw new IOException($"node {name} has a certificate in {directory} already");
        using var ca = X509Certificate2.CreateFromPemFile(caCertificate, caKey);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var now = DateTimeOffset.UtcNow;
        var notAfter = now + NodeLifetime < ca.NotAfter ? now + NodeLifetime : new DateTimeOffset(ca.NotAfter);
        using var node = request.Create(ca, now.AddMinutes(-5), notAfter, RandomNumberGenerator.GetBytes(16));
        WriteNew(keyPath, key.ExportPkcs8PrivateKeyPem(), Private);
        WriteNew(certificatePath, node.ExportCertificatePem(), Public);
        return certificatePath;
    }

    /// <summary>A new file with <paramref name="mode"/> from its creation (a key is never readable by others, not even for a moment).</summary>
    private static void WriteNew(string path, string text, UnixFileMode mode)
    {
        using var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode });
        file.Write(System.Text.Encoding.ASCII.GetBytes(text + "\n"));
        file.Flush(flushToDisk: true);
    }
}
