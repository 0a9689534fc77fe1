using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Amber.Transport.Cluster;

/// <summary>
/// This node as the cluster knows it: its certificate and key, and the cluster's CA, the one root it
/// trusts. Every connection between agents is TLS 1.3 with both ends' certificates checked against
/// that CA (<see cref="Check"/>); a peer without one of the cluster's certificates is refused during
/// the handshake, before it can send a byte of anything else.
/// </summary>
public sealed class NodeIdentity : IDisposable
{
    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2 _certificate;

    private NodeIdentity(string name, X509Certificate2 certificate, X509Certificate2 ca)
    {
        Name = name;
        _certificate = certificate;
        _ca = ca;
    }

    /// <summary>The node's name (its certificate's CN).</summary>
    public string Name { get; }

    /// <summary>Node <paramref name="name"/> of the cluster whose CA is in <paramref name="directory"/> (amber node add made its certificate there).</summary>
    /// <exception cref="IOException">A file is missing or not what it should be (a key readable by others, a certificate of another CA), said in one line.</exception>
    public static NodeIdentity Load(string directory, string name)
    {
        if (!ClusterAuthority.IsNodeName(name))
            throw new IOException($"'{name}' is not a node name ({ClusterAuthority.NodeNameRule})");
        string caPath = Path.Join(directory, ClusterAuthority.CaCertificate);
        string certificatePath = Path.Join(directory, name + ".crt"), keyPath = Path.Join(directory, name + ".key");
        foreach (string path in new[] { caPath, certificatePath, keyPath })
        {
            if (!File.Exists(path))
                throw new IOException($"{path} is missing{(path == caPath ? $": make a cluster with amber cluster init --dir {directory}" : $": add the node with amber node add {name} --cluster {directory}")}");
        }
        if ((File.GetUnixFileMode(keyPath) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            throw new IOException($"{keyPath} may be read or written by others: chmod 600 it");
        X509Certificate2 ca, certificate;
        try
        {
            ca = X509CertificateLoader.LoadCertificateFromFile(caPath);
            certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (CryptographicException e)
        {
            throw new IOException($"the certificates of node {name} in {directory} cannot be read: {e.Message}", e);
        }
        var identity = new NodeIdentity(name, certificate, ca);
        if (identity.Check(certificate) is { } problem)
        {
            identity.Dispose();
            throw new IOException($"{certificatePath} is not a certificate of the cluster in {directory}: {problem}");
        }
        if (certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false) != name)
        {
            identity.Dispose();
            throw new IOException($"{certificatePath} is node {certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false)}'s, not {name}'s");
        }
        return identity;
    }

    /// <summary>Why a peer's certificate is not one of this cluster's nodes', or null (then <paramref name="certificate"/>'s CN is its name).</summary>
    public string? Check(X509Certificate? certificate)
    {
        if (certificate is null)
            return "it showed no certificate";
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (!chain.Build(leaf))
            return $"its certificate ({leaf.Subject}) is not signed by this cluster's CA ({string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct())})";
        if (chain.ChainElements[^1].Certificate.Thumbprint != _ca.Thumbprint)
            return $"its certificate ({leaf.Subject}) does not lead to this cluster's CA";
        string name = leaf.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        return ClusterAuthority.IsNodeName(name) ? null : $"its certificate names no node ('{name}')";
    }

    /// <summary>The name a checked certificate gives its node.</summary>
    public static string NameOf(X509Certificate certificate) =>
        (certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData())).GetNameInfo(X509NameType.SimpleName, forIssuer: false);

    /// <summary>How this node accepts a peer: TLS 1.3, its certificate shown, the peer's required and checked (by <paramref name="check"/>, or <see cref="Check"/>).</summary>
    public SslServerAuthenticationOptions ServerOptions(Func<X509Certificate?, bool>? check = null) => new()
    {
        ServerCertificate = _certificate,
        ClientCertificateRequired = true,
        EnabledSslProtocols = SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, _) => check?.Invoke(certificate) ?? Check(certificate) is null,
    };

    /// <summary>How this node reaches a peer: TLS 1.3, its certificate shown, the peer's checked (any node of the cluster; by <paramref name="check"/>, or <see cref="Check"/>).</summary>
    public SslClientAuthenticationOptions ClientOptions(Func<X509Certificate?, bool>? check = null) => new()
    {
        TargetHost = "amber-node",
        ClientCertificates = [_certificate],
        EnabledSslProtocols = SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        LocalCertificateSelectionCallback = (_, _, _, _, _) => _certificate,
        RemoteCertificateValidationCallback = (_, certificate, _, _) => check?.Invoke(certificate) ?? Check(certificate) is null,
    };

    /// <inheritdoc/>
    public void Dispose()
    {
        _certificate.Dispose();
        _ca.Dispose();
    }
}
