"""Operator tasks on accounts and posts (the CLI's rules): create, list, delete, purge."""

from __future__ import annotations

from dataclasses import dataclass

from cache.listing import VersionedListingCache
from models.entities import User
from repositories.posts import PostRepository
from repositories.users import UserRepository
from services.accounts import AccountService
from services.emails import EmailAddress
from services.errors import NoSuchAccountError, UnknownUserError


@dataclass(frozen=True)
class AccountSummary:
    """One line of `users list`."""

    user: User
    posts: int


class AdminService:
    """Account administration; every change to a user's posts retires that user's cached listing."""

    def __init__(
        self,
        accounts: AccountService,
        users: UserRepository,
        posts: PostRepository,
        cache: VersionedListingCache,
    ) -> None:
        self._accounts = accounts
        self._users = users
        self._posts = posts
        self._cache = cache

    def create_user(self, email_address: EmailAddress, password: str) -> User:
        """Create an account under the rules of sign-up (a valid unique email, the password policy)."""
        return self._accounts.sign_up(email_address, password).user

    def list_users(self) -> list[AccountSummary]:
        """Every account with its number of posts, oldest first."""
        return [AccountSummary(user, posts) for user, posts in self._users.list_with_post_counts()]

    def find(self, email_address: EmailAddress) -> User:
        """The account with this email; NoSuchAccountError otherwise."""
        user = self._users.by_email(email_address)
        if user is None:
            raise NoSuchAccountError(email_address)
        return user

    def delete_user(self, email_address: EmailAddress) -> User:
        """Delete the account and its posts; its tokens and cached listing are gone everywhere at once."""
        user = self.find(email_address)
        try:
            self._accounts.remove(user)
        except UnknownUserError as exc:
            raise NoSuchAccountError(email_address) from exc  # deleted concurrently
        return user

    def purge_posts(self, email_address: EmailAddress) -> int:
        """Delete every post of the account, then retire its cached listing; how many were deleted."""
        user = self.find(email_address)
        deleted = self._posts.delete_all_for_user(user.id)
        self._cache.invalidate(user.id)
        return deleted
