using System.CommandLine;
using Amber.Image;

namespace Amber.Cli.Commands;

/// <summary>amber key new FILE: a key file for encrypted checkpoints.</summary>
public static class KeyCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The key file to make (it must not exist)" };
        var create = new Command("new", "Make a key file: 32 random bytes, mode 0600; prints the key's id") { file };
        create.SetAction(parse => CliErrors.Run(() =>
        {
            var key = ImageKey.Create(parse.GetValue(file)!);
            Console.Error.WriteLine($"made key {key.Id} in {key.Path}: keep it safe, an encrypted checkpoint cannot be restored without it");
            Console.Out.WriteLine(key.Id);
            return ExitCodes.Ok;
        }));
        return new Command("key", "Keys of encrypted checkpoints (amber checkpoint --encrypt KEYFILE, restore --key KEYFILE)") { create };
    }
}
